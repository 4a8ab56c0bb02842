"""Person masks from the FCN segmenter (torchvision's fcn_resnet50/101 weights, converted with
`tools.convert_weights`): what SisterNetwork's segmented stream needs beside a photo.

`tools/segment.py` writes masks for a whole dataset before `prepare --masks`; `PersonSegmenter`
makes them at prediction time (`fashion_jax.load(workdir, segmenter=WEIGHTS)`,
`predict --segmenter=WEIGHTS`).
"""

from __future__ import annotations

import cv2
import jax
import numpy as np

from fashion_jax.data import image_conventions
from fashion_jax.models import backbones, fcn, weights

BUCKET = 64  # the long side is rounded to a multiple of this: few shapes, few compilations


def network_size(h: int, w: int, short_side: int) -> tuple[int, int]:
  """(width, height) fed to the network: the shorter side `short_side`, the longer one scaled
  alike and rounded to a multiple of BUCKET (at most BUCKET / 2 pixels of stretch)."""
  scale = short_side / min(h, w)
  bucket = lambda n: max(BUCKET, int(round(n * scale / BUCKET)) * BUCKET)
  return (short_side, bucket(h)) if w <= h else (bucket(w), short_side)


def person_mask_of(model, variables, image_rgb: np.ndarray, short_side: int) -> np.ndarray:
  """[H, W] uint8 mask (255 person, 0 elsewhere) of one RGB image."""
  h, w = image_rgb.shape[:2]
  resized = cv2.resize(image_rgb, network_size(h, w, short_side), interpolation=cv2.INTER_LINEAR)
  x = image_conventions.normalize(resized[None], np.float32)
  logits = _apply(model, variables, x)
  mask = np.asarray(fcn.person_mask(logits)[0], np.uint8) * 255
  return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)


_COMPILED = {}


def _apply(model, variables, x):
  if model not in _COMPILED:
    _COMPILED[model] = jax.jit(lambda v, x: model.apply(v, x, train=False)["logits"])
  return _COMPILED[model](variables, x)


class PersonSegmenter:
  """`segmenter(image)` -> [H, W] uint8 person mask (255 person, 0 elsewhere) of an RGB image.

  weights: a converted fcn_resnet50 (or, with backbone="fcn_resnet101", 101) safetensors file;
  short_side: the shorter side the image is resized to (torchvision's preset: 520).
  """

  def __init__(self, weights_file: str, backbone: str = "fcn_resnet50", short_side: int = 520):
    self.variables = weights.load_variables(weights_file)
    self.model = backbones.get(backbone).build(num_classes=21)
    self.short_side = int(short_side)

  def __call__(self, image_rgb: np.ndarray) -> np.ndarray:
    return person_mask_of(self.model, self.variables, image_rgb, self.short_side)
