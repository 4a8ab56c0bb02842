"""A trained model's predictions apart from the network: input images checked and converted, the
crop rule, the warp to the network input, and the named results in the original image's pixels.

numpy and Pillow only, so that an exported model (`fashion_jax.serving`) runs without flax, and
a workdir's model (`fashion_jax.trained`) prepares and reads out images exactly as it does: the
two give the same numbers for the same image.

The warp is Pillow's bilinear affine transform with the training pipeline's matrix and pixel
convention (pixel centres at integers); training and evaluation warp with OpenCV, which rounds
its interpolation weights to 1/32: the two differ by about one grey level (tests measure it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from fashion_jax.data import formats, geometry, schema

SEGMENT_FILL = schema.SEGMENT_FILL  # data.segmented: the segmented image's background
VISIBLE_THRESHOLD = 0.3  # `visible`: the heatmap peak reaches this (training targets peak at 1)
TOP_K = 5
MASKS_NEEDED = (
    "this model reads a segmented image beside the photo, so it needs a person mask per image: "
    "give them (predict(..., masks=[...]); predict --masks=DIR of <relative path>.png, nonzero "
    "on the person), or the FCN segmenter's converted weights to make them "
    "(fashion_jax.load(workdir, segmenter=FILE); predict --segmenter=FILE; docs/pretrained.md)")


class InputError(ValueError):
  """An image, box or mask given to `predict` that cannot be used; the message names it."""


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """How an original image becomes the network input.

  input_hw: network input (height, width); crop: "bbox" (the garment box grown by
  `bbox_margin` of its size per side; the whole image where no box is given) or "image";
  segmented: "" or the background fill of the segmented-image stream ("white", "black"), which
  needs a person mask per image.
  """

  input_hw: tuple[int, int]
  crop: str = "image"
  bbox_margin: float = 0.0
  segmented: str = ""

  @classmethod
  def from_data_config(cls, data_cfg) -> Preprocess:
    return cls(tuple(int(v) for v in data_cfg.image_size), str(data_cfg.crop),
               float(data_cfg.bbox_margin), str(data_cfg.get("segmented", "") or ""))


@dataclasses.dataclass(frozen=True)
class Names:
  """What the model's outputs are called: the dataset's names (DatasetSpec) and the schema's."""

  keypoints: tuple[str, ...] = ()
  landmarks: tuple[str, ...] = ()
  categories: tuple[str, ...] = ()
  attributes: tuple[str, ...] = ()
  attribute_groups: tuple[int, ...] = ()
  attribute_group_names: tuple[str, ...] = ()
  dcsa_binary: tuple[str, ...] = ()
  dcsa_multiclass: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
  grouped_attributes: bool = False  # attribute scores are one softmax per group (X-Domain)


def as_rgb(image, index: int) -> np.ndarray:
  """uint8 [H, W, 3] from uint8 RGB, RGBA (alpha dropped) or grey ([H, W] or [H, W, 1])."""
  a = np.asarray(image)
  if a.dtype != np.uint8:
    raise InputError(f"image {index}: a {a.dtype} array of shape {a.shape}; expected uint8 RGB "
                     "with values 0-255 (floats in 0-1: (x * 255).round().astype(np.uint8))")
  if a.ndim == 2:
    a = a[..., None]
  if a.ndim != 3 or a.shape[-1] not in (1, 3, 4) or 0 in a.shape:
    raise InputError(f"image {index}: shape {a.shape}; expected [H, W, 3] RGB, [H, W, 4] RGBA "
                     "or [H, W] / [H, W, 1] grey")
  if a.shape[-1] == 1:
    a = np.repeat(a, 3, axis=-1)
  return np.ascontiguousarray(a[..., :3])


def load_images(images: Sequence, max_pixels: int = formats.DEFAULT_MAX_PIXELS) -> list:
  """Each entry as uint8 RGB: arrays converted (`as_rgb`), paths read (EXIF-upright)."""
  if isinstance(images, (str, os.PathLike, np.ndarray)) and np.ndim(images) != 4:
    raise InputError("images: give a list of images or paths (one image: [image])")
  out = []
  for i, image in enumerate(images):
    if isinstance(image, (str, os.PathLike)):
      out.append(formats.read_rgb(os.fspath(image), max_pixels))  # ImageError names the file
    else:
      out.append(as_rgb(image, i))
  return out


def input_box(image_hw: tuple[int, int], box, pre: Preprocess) -> np.ndarray:
  """The region (x1, y1, x2, y2) of the original image that fills the network input."""
  h, w = image_hw
  example = {"image": np.empty((h, w, 0)), "has_bbox": box is not None,
             "bbox": np.zeros(4) if box is None else np.asarray(box, np.float64)}
  return geometry.crop_box(example, pre.crop, pre.bbox_margin)


def input_matrix(image_hw: tuple[int, int], box, pre: Preprocess) -> np.ndarray:
  """The 2x3 matrix original -> network input for an image of `image_hw` and its optional box."""
  return geometry.box_to_output_affine(input_box(image_hw, box, pre), pre.input_hw)


def warp(image: np.ndarray, matrix: np.ndarray, out_hw: tuple[int, int],
         resample=Image.BILINEAR) -> np.ndarray:
  """`image` [H, W, C] uint8 seen through `matrix` (original -> output), black outside."""
  inverse = geometry.invert_affine(np.asarray(matrix, np.float64))
  # Pillow samples output pixel (x, y) at its centre (x + .5, y + .5) and reads input pixel i
  # at i + .5; the matrices here put centres at integers, so shift by half a pixel both ways.
  (a, b, c), (d, e, f) = inverse
  coefficients = (a, b, c + 0.5 * (a + b - 1), d, e, f + 0.5 * (d + e - 1))
  h, w = out_hw
  channels = image.shape[-1]
  mode = {1: "L", 3: "RGB"}[channels]
  source = Image.fromarray(image[..., 0] if channels == 1 else image, mode)
  out = np.asarray(source.transform((w, h), Image.AFFINE, coefficients, resample=resample,
                                    fillcolor=0))
  return out.reshape(h, w, channels)


def prepare(image: np.ndarray, box, mask, pre: Preprocess) -> tuple[dict, np.ndarray]:
  """({"image": [h, w, 3] uint8, and "segmented_image" when the model reads one}, matrix)."""
  matrix = input_matrix(image.shape[:2], box, pre)
  fields = {"image": warp(image, matrix, pre.input_hw)}
  if pre.segmented:
    if mask is None:
      raise InputError(MASKS_NEEDED)
    mask = np.asarray(mask)
    mask = mask[..., :1] if mask.ndim == 3 else mask[..., None]
    if mask.shape[:2] != image.shape[:2]:
      raise InputError(f"mask of shape {mask.shape[:2]} for an image of {image.shape[:2]}")
    small = warp((mask > 0).astype(np.uint8) * 255, matrix, pre.input_hw, Image.NEAREST)
    fields["segmented_image"] = np.where(small > 0, fields["image"],
                                         np.uint8(SEGMENT_FILL[pre.segmented])).astype(np.uint8)
  return fields, matrix


def _points(points: np.ndarray, scores: np.ndarray, names, matrix, threshold: float) -> dict:
  """{name: (x, y, confidence, visible)} in original pixels from network-input points [L, 2]."""
  original = geometry.to_original(points[None], matrix[None])[0]
  return {name: (float(x), float(y), float(s), bool(s >= threshold))
          for name, (x, y), s in zip(names, original, scores, strict=True)}


def _top(scores: np.ndarray, names, k: int) -> list:
  order = np.argsort(-scores, kind="stable")[:k]
  return [(names[i], float(scores[i])) for i in order]


def named(raw: dict, matrix: np.ndarray, names: Names, *, top_k: int = TOP_K,
          visible_threshold: float = VISIBLE_THRESHOLD, boundary_map: bool = False) -> dict:
  """One image's named results from its raw predictions (network-input frame, no batch axis).

  keypoints / landmarks: {name: (x, y, confidence, visible)} in original pixels; category:
  top-k [(name, probability)]; attributes: {name: score}; attribute_groups (X-Domain):
  {group: (class name, probability)}; dcsa: {label: (value, score)} (True/False for the binary
  labels, the class name for the multi-class ones); boundary_map: [h, w] floats in 0-1.
  """
  out = {}
  for kind in ("keypoints", "landmarks"):
    if kind in raw:
      scores = raw[f"{kind[:-1]}_scores"]
      out[kind] = _points(raw[kind], scores, getattr(names, kind), matrix, visible_threshold)
  if "category_scores" in raw and "binary_scores" not in raw:  # DCSA's category: under dcsa
    out["category"] = _top(raw["category_scores"], names.categories, top_k)
  if "attribute_scores" in raw and names.grouped_attributes:
    scores, groups = raw["attribute_scores"], np.asarray(names.attribute_groups)
    out["attribute_groups"] = {}
    for g, group in enumerate(names.attribute_group_names):  # one softmax per group
      members = np.flatnonzero(groups == g)
      best = members[np.argmax(scores[members])]
      out["attribute_groups"][group] = (names.attributes[best], float(scores[best]))
  elif "attribute_scores" in raw:
    out["attributes"] = {n: float(s) for n, s in zip(names.attributes, raw["attribute_scores"],
                                                      strict=True)}
  if "binary_scores" in raw:
    out["dcsa"] = {n: (bool(s >= 0.5), float(s)) for n, s in zip(
        names.dcsa_binary, raw["binary_scores"], strict=True)}
    for label, classes in names.dcsa_multiclass.items():
      scores = raw[f"{label}_scores"]
      out["dcsa"][label] = (classes[int(np.argmax(scores))], float(np.max(scores)))
  if boundary_map and "boundary_attention" in raw:
    out["boundary_map"] = np.asarray(raw["boundary_attention"], np.float32) / 255.0
  return out


def predict(raw_fn, pre: Preprocess, names: Names, input_fields: Sequence[str], batch_size: int,
            images, boxes=None, masks=None, *, top_k: int = TOP_K,
            visible_threshold: float = VISIBLE_THRESHOLD, boundary_map: bool = False,
            max_pixels: int = formats.DEFAULT_MAX_PIXELS) -> list[dict]:
  """Named results of `images` (see `TrainedModel.predict`), `batch_size` at a time, the last
  batch padded with blank images: `raw_fn(inputs)` sees one shape only (one compiled program).
  """
  images = load_images(images, max_pixels)
  for what, given in (("boxes", boxes), ("masks", masks)):
    if given is not None and len(given) != len(images):
      raise InputError(f"{what}: {len(given)} for {len(images)} images; give one per image "
                       "(None where there is none)")
  if boxes is not None and pre.crop != "bbox" and any(b is not None for b in boxes):
    raise InputError("boxes: this model reads the whole image (its crop rule is "
                     f"{pre.crop!r}), so boxes would be ignored; leave them out")
  if masks is not None and not pre.segmented:
    raise InputError("masks: this model reads no segmented image; leave them out")
  if pre.segmented and masks is None:
    raise InputError(MASKS_NEEDED)
  prepared = []
  for i, image in enumerate(images):
    box = None if boxes is None else boxes[i]
    try:
      prepared.append(prepare(image, box, None if masks is None else masks[i], pre))
    except InputError as e:
      raise InputError(f"image {i}: {e}") from None
  results = []
  for start in range(0, len(prepared), batch_size):
    chunk = prepared[start:start + batch_size]
    pad = batch_size - len(chunk)
    inputs = {f: np.stack([fields[f] for fields, _ in chunk]
                          + [np.zeros_like(chunk[0][0][f])] * pad) for f in input_fields}
    raw = raw_fn(inputs)
    for j, (_, matrix) in enumerate(chunk):
      result = named({k: np.asarray(v[j]) for k, v in raw.items()}, matrix, names, top_k=top_k,
                     visible_threshold=visible_threshold, boundary_map=boundary_map)
      image = images[start + j]
      box = input_box(image.shape[:2], None if boxes is None else boxes[start + j], pre)
      results.append({"image_size": (image.shape[1], image.shape[0]),
                      "crop": tuple(float(v) for v in box), **result})
  return results
