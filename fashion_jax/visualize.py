"""Pictures of predictions: ground truth and predicted points drawn on network-input images."""

from __future__ import annotations

import cv2
import numpy as np

from fashion_jax.data import schema

GT_COLOUR = (40, 220, 40)  # RGB: ground truth, filled dots
PRED_COLOUR = (255, 60, 60)  # predictions, crosses joined to their ground truth


def draw_points(image: np.ndarray, truth: np.ndarray, visibility: np.ndarray,
                predicted: np.ndarray | None, scale: int = 2) -> np.ndarray:
  """One panel: the image enlarged `scale` times with points on it.

  Args:
    image: [H, W, 3] uint8 RGB; truth, predicted: [L, 2] (x, y) pixels of `image`;
    visibility: [L] schema codes (ABSENT points are not drawn; OCCLUDED as hollow dots).
  """
  panel = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
  to_px = lambda p: tuple(int(round(v)) for v in (np.asarray(p) + 0.5) * scale - 0.5)
  for i in np.flatnonzero(visibility != schema.ABSENT):
    gt = to_px(truth[i])
    if predicted is not None:
      pr = to_px(predicted[i])
      cv2.line(panel, gt, pr, PRED_COLOUR, 1, cv2.LINE_AA)
      cv2.drawMarker(panel, pr, PRED_COLOUR, cv2.MARKER_CROSS, 3 * scale, 1)
    filled = -1 if visibility[i] == schema.VISIBLE else 1
    cv2.circle(panel, gt, scale + 1, GT_COLOUR, filled, cv2.LINE_AA)
  return panel


def overlay_map(image: np.ndarray, attention: np.ndarray, scale: int = 2) -> np.ndarray:
  """The image enlarged `scale` times with an [h, w] map in [0, 1] laid over it (JET colours,
  resized to the image: it may be coarser, e.g. a feature-map attention)."""
  h, w = image.shape[:2]
  values = cv2.resize(np.asarray(attention, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
  colours = cv2.applyColorMap(np.uint8(np.clip(values, 0, 1) * 255), cv2.COLORMAP_JET)
  blend = (0.5 * image + 0.5 * cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)).astype(np.uint8)
  return cv2.resize(blend, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def grid(panels: list[np.ndarray], columns: int = 4) -> np.ndarray:
  """Tiles equally sized panels into one image (black where the last row is short)."""
  h, w, _ = panels[0].shape
  rows = -(-len(panels) // columns)
  out = np.zeros((rows * h, columns * w, 3), np.uint8)
  for i, panel in enumerate(panels):
    r, c = divmod(i, columns)
    out[r * h:(r + 1) * h, c * w:(c + 1) * w] = panel
  return out


def save_png(path: str, image_rgb: np.ndarray) -> None:
  if not cv2.imwrite(path, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
    raise OSError(f"could not write {path}")


def prediction_grid(batch: dict, predictions: dict, n: int = 8) -> np.ndarray | None:
  """Panels for the first `n` valid examples of a batch, for every point set predicted
  (`keypoints` and/or `landmarks`); None when the system predicts no points."""
  names = [k for k in ("keypoints", "landmarks") if k in predictions]
  if not names:
    return None
  scale = max(1, 256 // batch["image"].shape[1])
  panels = []
  for i in np.flatnonzero(batch["valid"])[:n]:
    for name in names:
      panels.append(draw_points(batch["image"][i], batch[name][i],
                                batch[f"{name}_visibility"][i], predictions[name][i], scale))
  return grid(panels, columns=4) if panels else None
