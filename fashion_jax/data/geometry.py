"""Geometry of the network input, numpy only: the crop box, the one 2x3 affine matrix (original
pixels -> network-input pixels) that crops, resizes, rotates, zooms, shifts and flips, and its
inverse back to the original image. Pixel centres are at integers. Shared by the training
pipeline (`transforms`) and by inference without flax (`fashion_jax.inference`, `serving`).
"""

from __future__ import annotations

import numpy as np


def crop_box(example: dict, mode: str, margin: float) -> np.ndarray:
  """The region of the original image that maps onto the network input, (x1, y1, x2, y2).

  Args:
    mode: "bbox" (the annotated box, grown by `margin` of its size on each side) or "image".
  """
  h, w = example["image"].shape[:2]
  if mode == "image" or (mode == "bbox" and not example["has_bbox"]):
    return np.array([0, 0, w - 1, h - 1], np.float64)
  if mode != "bbox":
    raise ValueError(f"unknown crop mode {mode!r}; use 'bbox' or 'image'")
  x1, y1, x2, y2 = np.asarray(example["bbox"], np.float64)
  mx, my = margin * (x2 - x1 + 1), margin * (y2 - y1 + 1)
  return np.array([x1 - mx, y1 - my, x2 + mx, y2 + my])


def box_to_output_affine(box: np.ndarray, out_hw: tuple[int, int], *, scale: float = 1.0,
                         rotation_deg: float = 0.0, shift: tuple[float, float] = (0.0, 0.0),
                         flip: bool = False) -> np.ndarray:
  """2x3 matrix mapping original pixels to output pixels.

  The box (inclusive pixel-centre corners) fills the output without keeping the aspect ratio
  (the DeepFashion protocol); rotation and zoom act about the box centre in the original frame
  (so they do not shear), then the flip mirrors the output horizontally.
  """
  out_h, out_w = out_hw
  x1, y1, x2, y2 = box
  sx, sy = out_w / (x2 - x1 + 1.0), out_h / (y2 - y1 + 1.0)
  centre = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])
  theta = np.deg2rad(rotation_deg)
  rot = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
  linear = np.diag([sx, sy]) @ rot
  out_centre = np.array([(out_w - 1) / 2.0, (out_h - 1) / 2.0]) + np.asarray(shift)
  if flip:
    linear = np.diag([-1.0, 1.0]) @ linear
    out_centre[0] = (out_w - 1) - out_centre[0]
  offset = out_centre - linear @ centre
  return np.concatenate([linear, offset[:, None]], axis=1)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
  """[..., 2] points -> [..., 2] under a 2x3 matrix."""
  return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
  """Inverse of a 2x3 affine matrix (works on stacked [..., 2, 3] matrices)."""
  linear = np.linalg.inv(matrix[..., :2])
  offset = -np.einsum("...ij,...j->...i", linear, matrix[..., 2])
  return np.concatenate([linear, offset[..., None]], axis=-1)


def to_original(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
  """Network-input points [N, L, 2] -> original-image pixels, given transforms [N, 2, 3]."""
  inverse = invert_affine(np.asarray(transform, np.float64))
  return (np.einsum("nij,nlj->nli", inverse[..., :2], np.asarray(points, np.float64))
          + inverse[:, None, :, 2])
