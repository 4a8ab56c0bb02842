"""Host-side geometric and photometric transforms that keep keypoints aligned with pixels.

One 2x3 affine matrix `M` (original pixels -> network-input pixels) describes crop, resize,
rotation, scale, translation and horizontal flip at once; the image is warped with it and the
points are multiplied by it, so the two cannot drift apart. Pixel centres are at integers.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from fashion_jax.data import schema


@dataclasses.dataclass(frozen=True)
class Augment:
  """Random augmentation ranges; the defaults do nothing (evaluation)."""

  flip: bool = False  # horizontal flip with probability 1/2 (left/right points swapped)
  scale: tuple[float, float] = (1.0, 1.0)  # zoom factor range
  rotation: float = 0.0  # max absolute in-plane rotation, degrees
  translate: float = 0.0  # max shift as a fraction of the output size
  colour: float = 0.0  # max relative brightness/contrast/saturation change


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


def transform_points(points: np.ndarray, visibility: np.ndarray, matrix: np.ndarray,
                     out_hw: tuple[int, int], flip: bool,
                     flip_permutation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Moves points into the output frame and updates visibility.

  A point that leaves the output becomes TRUNCATED; a TRUNCATED point stays TRUNCATED even if it
  lands inside (its pixels are padding there); ABSENT stays ABSENT with zero coordinates. After a
  flip, left and right points swap names.
  """
  out = apply_affine(points.astype(np.float64), matrix)
  vis = visibility.copy()
  h, w = out_hw
  inside = (out[:, 0] > -0.5) & (out[:, 0] < w - 0.5) & (out[:, 1] > -0.5) & (out[:, 1] < h - 0.5)
  known = (vis == schema.VISIBLE) | (vis == schema.OCCLUDED)
  vis = np.where(known & ~inside, schema.TRUNCATED, vis).astype(np.int8)
  out = np.where((vis == schema.ABSENT)[:, None], 0.0, out)
  if flip:
    out, vis = out[flip_permutation], vis[flip_permutation]
  return out.astype(np.float32), vis


def jitter_colour(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
  """Random brightness, contrast and saturation, each scaled by a factor in 1 +- strength."""
  if strength <= 0:
    return image
  b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
  img = image.astype(np.float32) * b
  mean = img.mean()
  img = (img - mean) * c + mean
  grey = img.mean(axis=-1, keepdims=True)
  img = (img - grey) * s + grey
  return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def sample_augmentation(aug: Augment, rng: np.random.Generator) -> dict:
  """Draws one set of augmentation parameters from the ranges in `aug`."""
  return {
      "flip": bool(aug.flip and rng.random() < 0.5),
      "scale": float(rng.uniform(*aug.scale)),
      "rotation_deg": float(rng.uniform(-aug.rotation, aug.rotation)),
      "shift": tuple(rng.uniform(-aug.translate, aug.translate, size=2)),
  }


def warp_example(example: dict, box: np.ndarray, out_hw: tuple[int, int], params: dict,
                 with_mask: bool) -> dict:
  """Warps image (and mask) and moves landmarks and keypoints by one affine matrix.

  Returns the network-input fields: image, landmarks(+visibility), keypoints(+visibility),
  optionally mask, and `transform` (the 2x3 matrix original -> input, float32).
  """
  h, w = out_hw
  shift = (params["shift"][0] * w, params["shift"][1] * h)
  matrix = box_to_output_affine(box, out_hw, scale=params["scale"],
                                rotation_deg=params["rotation_deg"], shift=shift,
                                flip=params["flip"])
  out = {"image": cv2.warpAffine(example["image"], matrix, (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)),
         "transform": matrix.astype(np.float32)}
  if with_mask:
    mask = example["mask"][..., 0]
    if not example["has_mask"]:
      mask = np.zeros(example["image"].shape[:2], np.uint8)
    out["mask"] = cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_NEAREST)[..., None]
  for name, perm in (("landmarks", schema.LANDMARK_FLIP_PERMUTATION),
                     ("keypoints", schema.KEYPOINT_FLIP_PERMUTATION)):
    out[name], out[f"{name}_visibility"] = transform_points(
        example[name], example[f"{name}_visibility"], matrix, out_hw, params["flip"], perm)
  return out


def to_original(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
  """Network-input points [N, L, 2] -> original-image pixels, given transforms [N, 2, 3]."""
  inverse = invert_affine(np.asarray(transform, np.float64))
  return (np.einsum("nij,nlj->nli", inverse[..., :2], np.asarray(points, np.float64))
          + inverse[:, None, :, 2])
