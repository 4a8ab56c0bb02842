"""Stacked hourglass network (Newell, Yang and Deng, ECCV 2016) with intermediate supervision.

Layout of the authors' release: a stride-4 stem (7x7/2 conv, residual to 128, 2x2 max-pool,
residuals to `features`), then per stack an hourglass of `depth` down/up levels, residual
block(s), a 1x1 conv-BN-ReLU ("lin"), and a 1x1 conv to the heatmaps. Every stack but the last
feeds `x + conv1x1(lin) + conv1x1(heatmaps)` to the next. The residual block is the pre-activation
bottleneck BN-ReLU-1x1(f/2)-BN-ReLU-3x3(f/2)-BN-ReLU-1x1(f), with a 1x1 conv on the skip path
when the channel count changes.

Output taps (for a [B, 256, 256, 3] input):
  stem         [B, 64, 64, features]
  stack1 ..    [B, 64, 64, features]  each stack's "lin" features (before its heatmap conv)
  heatmaps     [num_stacks, B, 64, 64, num_heatmaps]  one prediction per stack (supervise all;
               the last is the network's output)
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fashion_jax.models import layers


class Residual(nn.Module):
  """Pre-activation bottleneck residual block: [B, H, W, C] -> [B, H, W, features]."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    norm, conv = layers.batch_norm(train, self.dtype), layers.conv(self.dtype)
    y = conv(self.features // 2, (1, 1), name="conv1")(nn.relu(norm(name="bn1")(x)))
    y = conv(self.features // 2, (3, 3), padding=1, name="conv2")(nn.relu(norm(name="bn2")(y)))
    y = conv(self.features, (1, 1), name="conv3")(nn.relu(norm(name="bn3")(y)))
    skip = x if x.shape[-1] == self.features else conv(self.features, (1, 1), name="skip")(x)
    return skip + y


class Hourglass(nn.Module):
  """One hourglass of `depth` levels: [B, H, W, F] -> [B, H, W, F]; H, W divisible by 2**depth."""
  depth: int
  features: int
  num_blocks: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if x.shape[1] % 2**self.depth or x.shape[2] % 2**self.depth:
      raise ValueError(f"Hourglass of depth {self.depth} needs a map whose sides divide by "
                       f"{2**self.depth}; got {x.shape[1]}x{x.shape[2]}")
    return self._level(x, self.depth, train)

  def _level(self, x, depth, train):
    def blocks(y, name):
      for i in range(self.num_blocks):
        y = Residual(self.features, dtype=self.dtype, name=f"{name}_{i}")(y, train)
      return y

    level = self.depth - depth  # 0 at the outermost (full-resolution) level
    up = blocks(x, f"up{level}")
    low = blocks(layers.max_pool(x, 2, 2), f"down{level}")
    low = self._level(low, depth - 1, train) if depth > 1 else blocks(low, f"bottom{level}")
    low = blocks(low, f"low{level}")
    return up + jnp.repeat(jnp.repeat(low, 2, axis=1), 2, axis=2)  # nearest-neighbour x2


class StackedHourglass(nn.Module):
  """Stacked hourglass over NHWC images; returns the taps of the module docstring.

  Attributes:
    num_heatmaps: output channels of every stack's heatmap conv (landmarks to predict).
    num_stacks: hourglasses in sequence (Newell et al. use 8, the two-stream network 4).
    depth: down-sampling levels per hourglass (4: 64x64 -> 4x4 at the waist).
    features: channels inside the hourglasses.
    num_blocks: residual blocks per level and after each hourglass.
    heatmap_init_std: the heatmap convolutions' weights start as N(0, std^2) with zero bias
      when given (near-empty maps at the start, as pose codebases initialise their last layer);
      None keeps the torchvision-style initialisation of every other convolution.
    dtype: computation dtype; parameters stay float32.
  """
  num_heatmaps: int
  num_stacks: int = 8
  depth: int = 4
  features: int = 256
  num_blocks: int = 1
  heatmap_init_std: float | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    norm, conv = layers.batch_norm(train, self.dtype), layers.conv(self.dtype)
    residual = functools.partial(Residual, dtype=self.dtype)

    init = {} if self.heatmap_init_std is None else {
        "kernel_init": nn.initializers.normal(self.heatmap_init_std)}
    x = conv(64, (7, 7), strides=2, padding=3, name="stem_conv")(x)
    x = nn.relu(norm(name="stem_bn")(x))
    x = residual(128, name="stem_res1")(x, train)
    x = layers.max_pool(x, 2, 2)
    x = residual(128, name="stem_res2")(x, train)
    x = residual(self.features, name="stem_res3")(x, train)
    taps, heatmaps = {"stem": x}, []
    for s in range(1, self.num_stacks + 1):
      y = Hourglass(self.depth, self.features, self.num_blocks, dtype=self.dtype,
                    name=f"hourglass{s}")(x, train)
      for i in range(self.num_blocks):
        y = residual(self.features, name=f"stack{s}_res{i}")(y, train)
      y = conv(self.features, (1, 1), name=f"stack{s}_lin")(y)
      y = nn.relu(norm(name=f"stack{s}_lin_bn")(y))
      heat = conv(self.num_heatmaps, (1, 1), name=f"stack{s}_heatmaps", **init)(y)
      taps[f"stack{s}"] = y
      heatmaps.append(heat)
      if s < self.num_stacks:  # remap features and predictions back into the next stack's input
        x = (x + conv(self.features, (1, 1), name=f"stack{s}_features_back")(y)
             + conv(self.features, (1, 1), name=f"stack{s}_heatmaps_back")(heat))
    taps["heatmaps"] = jnp.stack(heatmaps)
    return taps
