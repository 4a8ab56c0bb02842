"""Pieces shared by the backbones: torch-compatible layers, pooling and the named-stage runner.

Every backbone is a sequence of named stages. `run_stages` runs a contiguous slice of them and
returns each stage's output by name, which is how a system taps a backbone in the middle
(`stop_at="conv4_3"`) or continues it on modified features (`start_after="conv4_3"`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fashion_jax.ops import convolution, normalization, pooling

# torchvision's conv initialisation (kaiming normal, fan_out, ReLU gain).
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class TorchBatchNorm(nn.Module):
  """nn.BatchNorm over the last axis with torch.nn.BatchNorm2d's defaults and a closed-form
  gradient (ops.normalization).

  eps 1e-5; running = 0.9 running + 0.1 batch (the biased batch variance, as flax keeps it);
  batch variance as mean((x - mean)^2) like torch, not E[x^2] - E[x]^2, which loses digits when
  the mean is large against the spread (as after ReLUs). Same parameters ("scale", "bias") and
  statistics ("batch_stats": "mean", "var") as nn.BatchNorm, so checkpoints carry over.
  """
  use_running_average: bool = False
  momentum: float = 0.9
  epsilon: float = 1e-5
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: [..., C] -> [..., C] in `dtype` (default: x's promoted with float32 parameters)."""
    features = (x.shape[-1],)
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, features, jnp.float32)
    running_var = self.variable("batch_stats", "var", jnp.ones, features, jnp.float32)
    scale = self.param("scale", nn.initializers.ones, features, jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, features, jnp.float32)
    if self.use_running_average:
      inv_std = jax.lax.rsqrt(running_var.value + self.epsilon)
      y = (x - running_mean.value) * (inv_std * scale) + bias
    else:
      y, mean, var = normalization.batch_norm(x, scale, bias, self.epsilon)
      if not self.is_initializing():
        m = self.momentum
        running_mean.value = m * running_mean.value + (1 - m) * jax.lax.stop_gradient(mean)
        running_var.value = m * running_var.value + (1 - m) * jax.lax.stop_gradient(var)
    return y.astype(self.dtype or jnp.result_type(x, jnp.float32))

Stage = tuple[str, Callable[[jax.Array], jax.Array]]

# nn.Conv (same parameters, init and output) whose 1x1 convolutions are matrix products: XLA's
# CPU backend then differentiates them without transposing activations (ops.convolution).
Conv = functools.partial(nn.Conv, conv_general_dilated=convolution.conv_general_dilated)


def conv(dtype: Any, use_bias: bool = True) -> Callable[..., nn.Conv]:
  """layers.Conv with torchvision's init and the compute dtype; call with features, kernel, ..."""
  return functools.partial(Conv, use_bias=use_bias, dtype=dtype, kernel_init=conv_kernel_init)


def batch_norm(train: bool, dtype: Any) -> Callable[..., TorchBatchNorm]:
  """TorchBatchNorm normalising with batch statistics in training, running ones in eval."""
  return functools.partial(TorchBatchNorm, use_running_average=not train, dtype=dtype)


class StagedBackbone(nn.Module):
  """Base of the backbones built from named stages; subclasses define `_stages(train)`."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, *, start_after: str | None = None,
               stop_at: str | None = None) -> dict[str, jax.Array]:
    """Runs the stages after `start_after` up to `stop_at` (default: all) on x: [B, H, W, C].

    Returns:
      {stage name: output} of the stages that ran, in order.
    """
    return run_stages(self._stages(train), x, start_after=start_after, stop_at=stop_at,
                      owner=type(self).__name__)

  def stage_names(self) -> tuple[str, ...]:
    """All stage names in order (callable on an unbound module)."""
    return tuple(name for name, _ in self._stages(train=False))

  def _stages(self, train: bool) -> list[Stage]:
    raise NotImplementedError


def max_pool(x: jax.Array, window: int, stride: int, padding: int = 0) -> jax.Array:
  """torch.nn.MaxPool2d (padding with -inf, floor mode): [B, H, W, C] -> [B, H', W', C]; its
  gradient avoids XLA's slow select-and-scatter (fashion_jax.ops.pooling)."""
  pad = ((padding, padding), (padding, padding))
  return pooling.max_pool(x, (window, window), (stride, stride), pad)


def _adaptive_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
  """[out, in] averaging weights of torch's adaptive pooling bins (they may overlap)."""
  matrix = np.zeros((out_size, in_size), np.float32)
  for i in range(out_size):
    start = (i * in_size) // out_size
    end = -((-(i + 1) * in_size) // out_size)  # ceil((i + 1) * in / out)
    matrix[i, start:end] = 1.0 / (end - start)
  return matrix


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
  """torch.nn.AdaptiveAvgPool2d: [B, H, W, C] -> [B, out_h, out_w, C], bins as torch makes them.

  Bin i along an axis of length n covers [floor(i n / out), ceil((i + 1) n / out)); written as two
  small averaging matrices so that any input size (smaller or larger than the output) works.
  """
  rows = jnp.asarray(_adaptive_pool_matrix(x.shape[1], output_size[0]), x.dtype)
  cols = jnp.asarray(_adaptive_pool_matrix(x.shape[2], output_size[1]), x.dtype)
  return jnp.einsum("ih,bhwc,jw->bijc", rows, x, cols)


def _bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
  """[out, in] weights of torch's bilinear interpolation with align_corners=False."""
  matrix = np.zeros((out_size, in_size), np.float32)
  scale = in_size / out_size
  for i in range(out_size):
    source = max((i + 0.5) * scale - 0.5, 0.0)  # torch clamps negative source coordinates
    low = min(int(np.floor(source)), in_size - 1)
    high = min(low + 1, in_size - 1)
    weight = source - low
    matrix[i, low] += 1.0 - weight
    matrix[i, high] += weight
  return matrix


def bilinear_resize(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """torch.nn.functional.interpolate(mode="bilinear", align_corners=False), exactly:
  [B, H, W, C] -> [B, size[0], size[1], C]."""
  rows = jnp.asarray(_bilinear_matrix(x.shape[1], size[0]), x.dtype)
  cols = jnp.asarray(_bilinear_matrix(x.shape[2], size[1]), x.dtype)
  return jnp.einsum("ih,bhwc,jw->bijc", rows, x, cols)


def flatten_channels_first(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C*H*W] in torch's (C, H, W) order.

  Dense layers after a flatten then take torch's `[out, C*H*W]` weights with a plain transpose
  (and timm's equivalent `[out, C, H, W]` conv weights with a reshape), so imported classifier
  weights need no spatial permutation.
  """
  return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)


def stage_slice(names: Sequence[str], start_after: str | None, stop_at: str | None,
                owner: str) -> slice:
  """Index range of the stages strictly after `start_after` up to and including `stop_at`."""
  for arg, value in (("start_after", start_after), ("stop_at", stop_at)):
    if value is not None and value not in names:
      raise ValueError(f"{owner}: unknown {arg}={value!r}; stages are {list(names)}")
  begin = 0 if start_after is None else names.index(start_after) + 1
  end = len(names) if stop_at is None else names.index(stop_at) + 1
  if begin >= end:
    raise ValueError(f"{owner}: nothing to run between start_after={start_after!r} and "
                     f"stop_at={stop_at!r}; stages are {list(names)}")
  return slice(begin, end)


def run_stages(stages: Sequence[Stage], x: jax.Array, *, start_after: str | None = None,
               stop_at: str | None = None, owner: str = "backbone") -> dict[str, jax.Array]:
  """Runs stages in order; returns {stage name: its output} for the stages that ran.

  Args:
    stages: (name, fn) pairs; each fn maps the previous stage's output to its own.
    x: input of the first stage that runs: the image, or the (possibly modified) output of
      stage `start_after`.
    start_after: run from the stage after this one (None: from the first stage).
    stop_at: last stage to run (None: to the end).
    owner: the module's name, for error messages.
  """
  taps = {}
  for name, fn in stages[stage_slice([n for n, _ in stages], start_after, stop_at, owner)]:
    x = fn(x)
    taps[name] = x
  return taps


# Which tap of a 4-tap kernel axis feeds each output phase r (0: even, 1: odd output pixels)
# from input offset d = -1, 0, +1, for a stride-2 transposed convolution that pads its dilated
# input by 2: even outputs read w[0] at offset -1 and w[2] at 0; odd ones w[1] at 0 and w[3] at
# +1. [phase, offset + 1, tap].
_SUBPIXEL_TAPS = np.zeros((2, 3, 4), np.float32)
_SUBPIXEL_TAPS[0, 0, 0] = _SUBPIXEL_TAPS[0, 1, 2] = 1.0
_SUBPIXEL_TAPS[1, 1, 1] = _SUBPIXEL_TAPS[1, 2, 3] = 1.0


class Upsample2x(nn.Module):
  """`nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))` (torch's
  ConvTranspose2d(k=4, s=2, p=1)): [B, H, W, C] -> [B, 2H, 2W, features], same parameters
  (`kernel` [4, 4, C, features], `bias`), computed as one 3x3 convolution to 4 x features
  channels (one per output pixel phase) and a depth-to-space.

  XLA lowers a transposed convolution to a convolution over the zero-dilated input, and on CPU
  its gradient is slow (tools/compare_torch: the four of the landmark-attention network took
  10 s of a 27 s step); this form is the same function with ordinary convolutions.
  """

  features: int
  dtype: Any = jnp.float32
  kernel_init: Callable = nn.linear.default_kernel_init

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    kernel = self.param("kernel", self.kernel_init, (4, 4, c, self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
    taps = jnp.asarray(_SUBPIXEL_TAPS)
    # [3, 3, C, 2 (row phase), 2 (column phase), F] -> 3x3 kernel to 4F channels.
    phased = jnp.einsum("apt,bqs,tscf->pqcabf", taps, taps, kernel)
    phased = phased.reshape(3, 3, c, 4 * self.features).astype(self.dtype)
    y = jax.lax.conv_general_dilated(x.astype(self.dtype), phased, (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y.reshape(b, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, self.features) + bias.astype(self.dtype)
