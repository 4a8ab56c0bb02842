"""Heatmap ops, on device: Gaussian targets, argmax decoding, soft-argmax.

All coordinates are `(x, y)` with pixel centres at integers (see `fashion_jax.data.schema`).
A heatmap of stride `s` over an input image relates to it by `map = (input + 0.5) / s - 0.5`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def input_to_map(points: jax.Array, stride: float) -> jax.Array:
  """Input-image pixel coordinates -> heatmap pixel coordinates for a map of `stride`."""
  return (points + 0.5) / stride - 0.5


def map_to_input(points: jax.Array, stride: float) -> jax.Array:
  """Heatmap pixel coordinates -> input-image pixel coordinates (inverse of `input_to_map`)."""
  return (points + 0.5) * stride - 0.5


def gaussian_heatmaps(points: jax.Array, valid: jax.Array, height: int, width: int,
                      sigma: float, dtype=jnp.float32) -> jax.Array:
  """Renders one unnormalised Gaussian peak (value 1 at the point) per point.

  Args:
    points: [..., L, 2] (x, y) in map pixels; may lie outside the map (the peak is clipped).
    valid: [..., L] bool; invalid points (or NaN coordinates) get an all-zero map.
    height, width: map size.
    sigma: standard deviation in map pixels.

  Returns:
    [..., height, width, L] maps in [0, 1].
  """
  valid = valid & jnp.all(jnp.isfinite(points), axis=-1)
  points = jnp.where(valid[..., None], points, 0.0)
  xs = jnp.arange(width, dtype=jnp.float32)
  ys = jnp.arange(height, dtype=jnp.float32)
  # Separable: exp(-(dx^2 + dy^2) / 2s^2) = exp(-dx^2 / 2s^2) * exp(-dy^2 / 2s^2).
  gx = jnp.exp(-((xs - points[..., 0:1]) ** 2) / (2 * sigma**2))  # [..., L, W]
  gy = jnp.exp(-((ys - points[..., 1:2]) ** 2) / (2 * sigma**2))  # [..., L, H]
  maps = gy[..., :, None] * gx[..., None, :]  # [..., L, H, W]
  maps = maps * valid[..., None, None]
  return jnp.moveaxis(maps, -3, -1).astype(dtype)


def background_map(keypoint_maps: jax.Array) -> jax.Array:
  """Pose-machine background channel, 1 - max over keypoints: [..., H, W, L] -> [..., H, W, 1]."""
  return 1.0 - jnp.max(keypoint_maps, axis=-1, keepdims=True)


def argmax_decode(heatmaps: jax.Array, subpixel: bool = True) -> tuple[jax.Array, jax.Array]:
  """Peak location of each map, with the quarter-pixel shift toward the higher neighbour.

  The shift is the usual stacked-hourglass refinement: along each axis, move 0.25 px toward the
  neighbour with the larger value (no shift at the border or on ties).

  Args:
    heatmaps: [..., H, W, L].

  Returns:
    points: [..., L, 2] (x, y) in map pixels; scores: [..., L] the peak values.
  """
  *batch, height, width, num = heatmaps.shape
  maps = jnp.moveaxis(heatmaps, -1, -3).reshape(*batch, num, height * width)
  flat = jnp.argmax(maps, axis=-1)
  scores = jnp.take_along_axis(maps, flat[..., None], axis=-1)[..., 0]
  y, x = flat // width, flat % width
  points = jnp.stack([x, y], axis=-1).astype(jnp.float32)
  if subpixel:
    grid = maps.reshape(*batch, num, height, width)

    def value_at(yy, xx):
      inside = (xx >= 0) & (xx < width) & (yy >= 0) & (yy < height)
      idx = jnp.clip(yy, 0, height - 1) * width + jnp.clip(xx, 0, width - 1)
      v = jnp.take_along_axis(grid.reshape(*batch, num, -1), idx[..., None], axis=-1)[..., 0]
      return jnp.where(inside, v, -jnp.inf)

    dx = value_at(y, x + 1) - value_at(y, x - 1)
    dy = value_at(y + 1, x) - value_at(y - 1, x)
    # Border neighbours read -inf; treat a difference against -inf as "no information".
    dx = jnp.where(jnp.isfinite(dx), dx, 0.0)
    dy = jnp.where(jnp.isfinite(dy), dy, 0.0)
    points = points + 0.25 * jnp.stack([jnp.sign(dx), jnp.sign(dy)], axis=-1)
  return points, scores


def soft_argmax(heatmaps: jax.Array, temperature: float = 1.0) -> jax.Array:
  """Differentiable expected location under softmax(heatmap / temperature).

  Args:
    heatmaps: [..., H, W, L].
    temperature: softmax temperature; smaller approaches the hard argmax.

  Returns:
    [..., L, 2] (x, y) in map pixels.
  """
  *batch, height, width, num = heatmaps.shape
  logits = jnp.moveaxis(heatmaps, -1, -3).reshape(*batch, num, height * width)
  probs = jax.nn.softmax(logits.astype(jnp.float32) / temperature, axis=-1)
  probs = probs.reshape(*batch, num, height, width)
  x = jnp.sum(probs.sum(axis=-2) * jnp.arange(width, dtype=jnp.float32), axis=-1)
  y = jnp.sum(probs.sum(axis=-1) * jnp.arange(height, dtype=jnp.float32), axis=-1)
  return jnp.stack([x, y], axis=-1)
