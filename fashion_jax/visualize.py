"""Pictures of predictions: ground truth and predicted points drawn on network-input images
(training and evaluation), and one prediction drawn on the original photo (`overlay_on_original`,
the predict command's pictures)."""

from __future__ import annotations

import contextlib
import os

import cv2
import numpy as np

from fashion_jax.data import geometry, schema

GT_COLOUR = (40, 220, 40)  # RGB: ground truth, filled dots
PRED_COLOUR = (255, 60, 60)  # predictions, crosses joined to their ground truth
CROP_COLOUR = (255, 200, 0)  # the region the network read
MAX_TEXT_LINES = 4  # labels written on an overlay; more would hide the photo


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
  """Writes a PNG whole or not at all (through a temporary file); a failed write (a full
  disk) raises OSError naming the file and the system's reason, and leaves no partial file."""
  ok, encoded = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
  if not ok:
    raise OSError(f"could not encode {path} as PNG")
  tmp = f"{path}.tmp"
  try:
    with open(tmp, "wb") as f:
      f.write(encoded.tobytes())
    os.replace(tmp, path)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise OSError(e.errno, f"could not write {path}: {e.strerror or e}") from None


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


def overlay_on_original(image: np.ndarray, result: dict, show_crop: bool = False) -> np.ndarray:
  """One image's prediction drawn on the photo itself, at the photo's size.

  Args:
    image: [H, W, 3] uint8 RGB, the photo `result` was predicted on.
    result: one result of `TrainedModel.predict` / `ExportedModel.predict` (points in the
      photo's pixels, `crop` the region the network read, optional `boundary_map` [h, w] in 0-1).
    show_crop: draw the crop box (for models that read a garment box).

  Returns:
    [H, W, 3] uint8 RGB: the boundary map blended over the crop, the crop box, each visible
    point as a dot with a short name, and the top labels in the top-left corner.
  """
  out = np.array(image, np.uint8, copy=True)
  crop = np.asarray(result["crop"], np.float64)
  if "boundary_map" in result:
    out = _blend_over_box(out, np.asarray(result["boundary_map"], np.float32), crop)
  scale = max(0.3, min(out.shape[:2]) / 600)  # text and dots grow with the photo
  if show_crop:
    corners = np.round(crop).astype(int)
    cv2.rectangle(out, tuple(corners[:2]), tuple(corners[2:]), CROP_COLOUR,
                  max(1, round(2 * scale)))
  for kind in ("keypoints", "landmarks"):
    for name, (x, y, _, visible) in result.get(kind, {}).items():
      if visible:
        centre = (int(round(x)), int(round(y)))
        cv2.circle(out, centre, max(2, round(4 * scale)), PRED_COLOUR, -1, cv2.LINE_AA)
        _text(out, short_name(name), (centre[0] + 3, centre[1] - 3), 0.8 * scale)
  line_height = int(30 * scale) + 4
  for i, line in enumerate(summary_lines(result)[:MAX_TEXT_LINES]):
    _text(out, line, (3, line_height * (i + 1)), scale)
  return out


def short_name(name: str) -> str:
  """"cuff_left_in" -> "cuff L in": sides as L/R, so that labels stay short and unambiguous."""
  return " ".join({"left": "L", "right": "R"}.get(w, w) for w in name.split("_"))


def summary_lines(result: dict) -> list[str]:
  """The top labels of a result as text lines: category, attribute groups or top attributes,
  and the DCSA labels (multi-class values, then the most confident positive binary labels)."""
  lines = []
  if result.get("category"):
    name, probability = result["category"][0]
    lines.append(f"{name} {probability:.2f}")
  groups = result.get("attribute_groups", {})
  lines += [f"{group}: {value} {p:.2f}" for group, (value, p) in groups.items()]
  if result.get("attributes"):
    top = sorted(result["attributes"].items(), key=lambda kv: -kv[1])[:3]
    lines.append(", ".join(name for name, _ in top))
  dcsa = result.get("dcsa", {})
  lines += [f"{k}: {v}" for k, (v, _) in dcsa.items() if not isinstance(v, bool)]
  positives = sorted((s, k) for k, (v, s) in dcsa.items() if v is True)[::-1][:3]
  if positives:
    lines.append(", ".join(k for _, k in positives))
  return lines


def _blend_over_box(image: np.ndarray, values: np.ndarray, box: np.ndarray) -> np.ndarray:
  """`image` with the [h, w] map `values` (0-1, covering `box`) half blended in JET colours."""
  h, w = image.shape[:2]
  to_map = geometry.box_to_output_affine(box, values.shape)  # photo pixels -> map pixels
  warp = lambda a, border: cv2.warpAffine(a, to_map, (w, h), flags=cv2.INTER_LINEAR
                                          | cv2.WARP_INVERSE_MAP, borderMode=border)
  spread = warp(values, cv2.BORDER_REPLICATE)  # the map's edge values up to the box's edge
  inside = warp(np.ones_like(values), cv2.BORDER_CONSTANT)[..., None]
  colours = cv2.applyColorMap(np.uint8(np.clip(spread, 0, 1) * 255), cv2.COLORMAP_JET)
  blend = 0.5 * image + 0.5 * cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)
  return (inside * blend + (1 - inside) * image).round().astype(np.uint8)


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float) -> None:
  """White text with a dark outline, legible on any photo."""
  thick = max(1, round(1.5 * scale))
  for colour, width in (((0, 0, 0), thick + 2), ((255, 255, 255), thick)):
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width,
                cv2.LINE_AA)
