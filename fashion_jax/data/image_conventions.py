"""Input conventions of every model: RGB, uint8 [0, 255] on the host, ImageNet-normalised floats.

Images travel through the data pipeline as uint8 [B, H, W, 3] in RGB order (OpenCV decodes to
BGR: convert with `cv2.cvtColor(img, cv2.COLOR_BGR2RGB)` before anything else). Models take
`normalize(images)`: (x / 255 - mean) / std per channel with torchvision's ImageNet statistics,
the convention of every torchvision/timm checkpoint this toolbox imports.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

CHANNEL_ORDER = "RGB"
PIXEL_MAX = 255.0  # uint8 images span [0, 255]
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)  # of x / 255
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


def _namespace(images):
  return np if isinstance(images, np.ndarray | np.generic) else jnp


def normalize(images, dtype: Any = jnp.float32):
  """uint8 RGB images [..., H, W, 3] in [0, 255] -> ImageNet-normalised `dtype` array.

  Works on numpy arrays on the host (returns numpy) and on jax arrays, e.g. inside a jitted step
  (returns jax); the arithmetic is float32 whatever `dtype` is.
  """
  if images.shape[-1] != 3:
    raise ValueError(f"normalize expects [..., H, W, 3] RGB images; got shape {images.shape}")
  xp = _namespace(images)
  mean = xp.asarray(IMAGENET_MEAN_RGB, xp.float32) * PIXEL_MAX
  std = xp.asarray(IMAGENET_STD_RGB, xp.float32) * PIXEL_MAX
  return ((images.astype(xp.float32) - mean) / std).astype(dtype)


def denormalize(images):
  """Inverse of `normalize`: float [..., H, W, 3] -> uint8 RGB in [0, 255] (rounded, clipped)."""
  xp = _namespace(images)
  mean = xp.asarray(IMAGENET_MEAN_RGB, xp.float32) * PIXEL_MAX
  std = xp.asarray(IMAGENET_STD_RGB, xp.float32) * PIXEL_MAX
  pixels = images.astype(xp.float32) * std + mean
  return xp.clip(xp.round(pixels), 0, PIXEL_MAX).astype(xp.uint8)
