"""Losses as pure functions with keyword arguments; masks are explicit arguments.

Masked-out entries (padding, missing labels, invisible landmarks) contribute nothing to the value
or to the gradient. Heatmap targets and heatmap losses live here, once, for every system; their
units are explicit: points and `sigma_input_px` are in network-input pixels, maps have their own
size, and the stride (input pixels per map pixel) relates the two.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fashion_jax.ops import heatmaps


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of `values` [B] over `mask` [B]; 0 when the mask is empty (never NaN)."""
  mask = mask.astype(values.dtype)
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def heatmap_stride(input_hw: tuple[int, int], map_hw: tuple[int, int]) -> float:
  """Network-input pixels per map pixel (maps keep the input's aspect ratio)."""
  if input_hw[0] * map_hw[1] != input_hw[1] * map_hw[0]:
    raise ValueError(f"maps {map_hw} do not keep the aspect ratio of the input {input_hw}")
  return input_hw[0] / map_hw[0]


def heatmap_targets(*, points: jax.Array, mask: jax.Array, map_hw: tuple[int, int],
                    stride: float, sigma_input_px: float, background: bool = False) -> jax.Array:
  """Gaussian-peak target maps (value 1 at the point).

  Args:
    points: [B, K, 2] (x, y) in network-input pixels.
    mask: [B, K] bool, the points that get a peak (the others get an all-zero map).
    map_hw: target map size; stride: input pixels per map pixel.
    sigma_input_px: the Gaussian's standard deviation in input pixels (sigma_input_px / stride
      map pixels), so a config means the same thing at every map resolution.
    background: append the pose-machine background channel, 1 - max over the K maps.

  Returns:
    [B, H, W, K (+1)] float32.
  """
  maps = heatmaps.gaussian_heatmaps(heatmaps.input_to_map(points, stride), mask, map_hw[0],
                                    map_hw[1], sigma_input_px / stride)
  if background:
    maps = jnp.concatenate([maps, heatmaps.background_map(maps)], axis=-1)
  return maps


def heatmap_squared_error(*, predictions: jax.Array, targets: jax.Array,
                          example_mask: jax.Array, channel_mask: jax.Array | None = None,
                          normalize: str = "per_example") -> jax.Array:
  """Squared error between predicted and target maps, for one output or a stack of them.

  Args:
    predictions: [B, H, W, C], or [S, B, H, W, C] for S stacked outputs (pose-machine stages,
      hourglass stacks: intermediate supervision), each compared with the same targets.
    targets: [B, H, W, C].
    example_mask: [B] bool; masked-out examples count for nothing.
    channel_mask: optional [B, C] bool; masked channels contribute zero error.
    normalize: "per_example": the sum over pixels and channels of each example, averaged over
      the masked-in examples (the pose machine's per-image loss). "per_element": the sum divided
      by every element of the masked-in examples, masked channels included, N = B' * H * W * C
      (the landmark-attention paper's 1/N over all array elements).

  Returns:
    a scalar, or [S] for stacked predictions.
  """
  stacked = predictions.ndim == 5
  preds = predictions if stacked else predictions[None]
  sq = jnp.square(preds.astype(jnp.float32) - targets[None])
  if channel_mask is not None:
    sq = sq * channel_mask[None, :, None, None, :].astype(sq.dtype)
  per_example = jnp.sum(sq, axis=(2, 3, 4))  # [S, B]
  examples = example_mask.astype(jnp.float32)
  total = jnp.sum(per_example * examples[None], axis=1)  # [S]
  if normalize == "per_example":
    denominator = jnp.maximum(jnp.sum(examples), 1.0)
  elif normalize == "per_element":
    denominator = jnp.maximum(jnp.sum(examples), 1.0) * (sq.shape[2] * sq.shape[3] * sq.shape[4])
  else:
    raise ValueError(f"unknown normalize {normalize!r}; use per_example or per_element")
  value = total / denominator
  return value if stacked else value[0]


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
                          positive_weight: float = 1.0, negative_weight: float = 1.0,
                          normalize: str = "count") -> jax.Array:
  """Binary cross-entropy per label with class weights, over the labels whose mask is set.

  loss_i = -w_i [y_i log s(z_i) + (1 - y_i) log(1 - s(z_i))], w_i the weight of label i's class.
  `positive_weight` > 1 weights rare positives up (the two-stream paper's W = 332); the
  landmark-attention public code uses weights 0.1 (negative) and 1 (positive).

  Args:
    logits, labels: [B, A] (labels in {0, 1}; anything where masked out); label_mask: [B, A].
    normalize: "count": sum_i loss_i / (number of labels counted); "weight":
      sum_i loss_i / sum_i w_i, the weighted mean of PyTorch's `CrossEntropyLoss(weight=...)`.
  """
  logits = logits.astype(jnp.float32)
  labels = jnp.where(label_mask, labels, 0).astype(jnp.float32)
  weights = (labels * positive_weight + (1.0 - labels) * negative_weight)
  weights = weights * label_mask.astype(jnp.float32)
  nll = -(labels * jax.nn.log_sigmoid(logits) + (1.0 - labels) * jax.nn.log_sigmoid(-logits))
  if normalize == "count":
    denominator = jnp.sum(label_mask.astype(jnp.float32))
  elif normalize == "weight":
    denominator = jnp.sum(weights)
  else:
    raise ValueError(f"unknown normalize {normalize!r}; use count or weight")
  return jnp.sum(weights * nll) / jnp.maximum(denominator, 1e-12)


def _squared_distance(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.sum(jnp.square(a.astype(jnp.float32) - b.astype(jnp.float32)), axis=-1)


TRIPLET_REDUCTIONS = ("sum", "mean")


def _reduce_triplets(value: jax.Array, example_mask: jax.Array, reduction: str) -> jax.Array:
  if reduction == "sum":
    return jnp.sum(jnp.where(example_mask, value, 0.0))
  if reduction == "mean":
    return masked_mean(value, example_mask)
  raise ValueError(f"triplet reduction {reduction!r}; use one of {TRIPLET_REDUCTIONS}")


def tste_loss(*, anchor: jax.Array, positive: jax.Array, negative: jax.Array,
              example_mask: jax.Array, alpha: float = 1.0, reduction: str = "mean") -> jax.Array:
  """t-distributed stochastic triplet embedding loss (van der Maaten and Weinberger 2012).

  With the Student-t kernel K(a, b) = (1 + ||a - b||^2 / alpha)^(-(alpha + 1) / 2), each triplet
  costs -log(K(a, p) / (K(a, p) + K(a, n))) = log(1 + K(a, n) / K(a, p)): log 2 when p and n
  are equally far, towards 0 as n recedes or p approaches. Summed (`reduction="sum"`, the
  curriculum-transfer poster's formula) or averaged over the masked-in triplets.

  Args:
    anchor, positive, negative: [B, D] embeddings; example_mask: [B] bool.
  """
  log_k = lambda d2: -0.5 * (alpha + 1.0) * jnp.log1p(d2 / alpha)
  lp, ln = log_k(_squared_distance(anchor, positive)), log_k(_squared_distance(anchor, negative))
  return _reduce_triplets(jnp.logaddexp(lp, ln) - lp, example_mask, reduction)


def margin_triplet_loss(*, anchor: jax.Array, positive: jax.Array, negative: jax.Array,
                        example_mask: jax.Array, margin: float = 0.2,
                        reduction: str = "mean") -> jax.Array:
  """max(0, margin + ||a - p||^2 - ||a - n||^2), summed or averaged over masked-in triplets."""
  value = jax.nn.relu(margin + _squared_distance(anchor, positive)
                      - _squared_distance(anchor, negative))
  return _reduce_triplets(value, example_mask, reduction)
