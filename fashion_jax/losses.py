"""Losses as pure functions with keyword arguments; masks are explicit arguments.

Every loss averages over the examples whose `example_mask` is set (padding and examples missing
the label contribute nothing, to the value or to the gradient).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fashion_jax.data import schema
from fashion_jax.ops import heatmaps


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of `values` [B] over `mask` [B]; 0 when the mask is empty (never NaN)."""
  mask = mask.astype(values.dtype)
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def located(visibility: jax.Array) -> jax.Array:
  """Points whose coordinates are annotated: VISIBLE, OCCLUDED or TRUNCATED (not ABSENT)."""
  return visibility != schema.ABSENT


def keypoint_heatmap_targets(*, points: jax.Array, visibility: jax.Array, map_hw: tuple[int, int],
                             stride: float, sigma: float, background: bool) -> jax.Array:
  """Gaussian-peak target maps for input-pixel points.

  Args:
    points: [B, L, 2] (x, y) network-input pixels; visibility: [B, L] schema codes. Every located
      point gets a peak (occluded points are annotated; truncated ones clip at the border); ABSENT
      points get an empty map.
    map_hw: target map size; stride: input pixels per map pixel; sigma: in map pixels.
    background: append the pose-machine background channel (1 - max over keypoints).

  Returns:
    [B, H, W, L (+1)] float32.
  """
  maps = heatmaps.gaussian_heatmaps(heatmaps.input_to_map(points, stride), located(visibility),
                                    map_hw[0], map_hw[1], sigma)
  if background:
    maps = jnp.concatenate([maps, heatmaps.background_map(maps)], axis=-1)
  return maps


def heatmap_l2(*, predictions: jax.Array, targets: jax.Array, example_mask: jax.Array,
               channel_mask: jax.Array | None = None) -> jax.Array:
  """Squared error summed over pixels and channels, averaged over masked-in examples.

  Args:
    predictions, targets: [B, H, W, C].
    example_mask: [B] bool.
    channel_mask: optional [B, C] bool; masked channels contribute nothing.
  """
  sq = jnp.square(predictions.astype(jnp.float32) - targets)
  if channel_mask is not None:
    sq = sq * channel_mask[:, None, None, :].astype(sq.dtype)
  return masked_mean(jnp.sum(sq, axis=(1, 2, 3)), example_mask)


def softmax_cross_entropy(*, logits: jax.Array, labels: jax.Array,
                          example_mask: jax.Array) -> jax.Array:
  """Categorical cross-entropy averaged over masked-in examples.

  Args:
    logits: [B, C]; labels: [B] int (any value where masked out); example_mask: [B] bool.
  """
  labels = jnp.where(example_mask, labels, 0)
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]
  return masked_mean(nll, example_mask)


def sigmoid_cross_entropy(*, logits: jax.Array, labels: jax.Array, label_mask: jax.Array,
                          positive_weight: float = 1.0) -> jax.Array:
  """Binary cross-entropy per label, averaged over the labels whose mask is set.

  `positive_weight` > 1 is the asymmetric weighting of rare positives (the two-stream paper's
  W = 332); 1 is the standard loss.

  Args:
    logits, labels: [B, A] (labels in {0, 1}; anything where masked out); label_mask: [B, A].
  """
  logits = logits.astype(jnp.float32)
  labels = jnp.where(label_mask, labels, 0).astype(jnp.float32)
  loss = -(positive_weight * labels * jax.nn.log_sigmoid(logits)
           + (1.0 - labels) * jax.nn.log_sigmoid(-logits))
  mask = label_mask.astype(jnp.float32)
  return jnp.sum(loss * mask) / jnp.maximum(jnp.sum(mask), 1.0)
