"""ResNet in the torchvision layout (v1.5: the stride of a bottleneck sits on its 3x3 conv).

Stages, each tappable by name (shapes for a [B, 224, 224, 3] input, ResNet-50):
  stem    conv1 7x7/2 + bn1 + ReLU + 3x3/2 max-pool     [B, 56, 56, 64]
  stage1  layer1                                       [B, 56, 56, 256]
  stage2  layer2                                       [B, 28, 28, 512]
  stage3  layer3                                       [B, 14, 14, 1024]
  stage4  layer4                                       [B, 7, 7, 2048]
  pooled  global average pool                          [B, 2048]
  logits  fc (only when num_classes is not None)       [B, num_classes]

Flax names mirror torchvision's state-dict keys (`layer1.0.conv1` -> `layer1_0/conv1`,
`layer1.0.downsample.0` -> `layer1_0/downsample_conv`), see `torch_module_name`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from fashion_jax.models import layers


class BasicBlock(nn.Module):
  """Two 3x3 convs (ResNet-18/34). [B, H, W, C] -> [B, H/stride, W/stride, features]."""
  features: int
  stride: int = 1
  dtype: Any = jnp.float32
  dilation: int = 1
  expansion: ClassVar[int] = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.dilation != 1:
      raise ValueError("torchvision's BasicBlock has no dilation (ResNet-18/34 cannot dilate)")
    conv, norm = layers.conv(self.dtype, use_bias=False), layers.batch_norm(train, self.dtype)
    y = conv(self.features, (3, 3), strides=self.stride, padding=1, name="conv1")(x)
    y = nn.relu(norm(name="bn1")(y))
    y = conv(self.features, (3, 3), padding=1, name="conv2")(y)
    y = norm(name="bn2")(y)
    return nn.relu(y + _shortcut(x, y.shape, self.stride, conv, norm))


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (strided or dilated) -> 1x1 with 4x expansion.
  [B, H, W, C] -> [B, H/s, W/s, 4 features]."""
  features: int
  stride: int = 1
  dtype: Any = jnp.float32
  dilation: int = 1
  expansion: ClassVar[int] = 4

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv, norm = layers.conv(self.dtype, use_bias=False), layers.batch_norm(train, self.dtype)
    y = conv(self.features, (1, 1), name="conv1")(x)
    y = nn.relu(norm(name="bn1")(y))
    y = conv(self.features, (3, 3), strides=self.stride, padding=self.dilation,
             kernel_dilation=self.dilation, name="conv2")(y)
    y = nn.relu(norm(name="bn2")(y))
    y = conv(self.features * self.expansion, (1, 1), name="conv3")(y)
    y = norm(name="bn3")(y)
    return nn.relu(y + _shortcut(x, y.shape, self.stride, conv, norm))


def _shortcut(x, out_shape, stride, conv, norm):
  """Identity, or torchvision's `downsample` (1x1 strided conv + BN) when shapes differ."""
  if x.shape == out_shape:
    return x
  x = conv(out_shape[-1], (1, 1), strides=stride, name="downsample_conv")(x)
  return norm(name="downsample_bn")(x)


class ResNet(layers.StagedBackbone):
  """ResNet over NHWC images; returns {stage name: output} (see the module docstring).

  Attributes:
    stage_sizes: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
    block: `BasicBlock` or `Bottleneck`.
    num_classes: size of the `fc` classifier; None drops it (taps end at `pooled`).
    width: channels of the stem and of the first stage's blocks (before expansion).
    dilate: per stage 2-4, torchvision's `replace_stride_with_dilation`: the stage keeps its
      input's resolution and dilates its 3x3 convolutions instead (the segmentation backbones:
      (False, True, True) gives stride 8).
    dtype: computation dtype; parameters stay float32.
  """
  stage_sizes: Sequence[int]
  block: type[nn.Module] = Bottleneck
  num_classes: int | None = 1000
  width: int = 64
  dilate: Sequence[bool] = (False, False, False)
  dtype: Any = jnp.float32

  def _stages(self, train: bool) -> list[layers.Stage]:
    def stem(x):
      x = layers.conv(self.dtype, use_bias=False)(self.width, (7, 7), strides=2, padding=3,
                                                  name="conv1")(x)
      x = layers.batch_norm(train, self.dtype)(name="bn1")(x)
      return layers.max_pool(nn.relu(x), 3, 2, padding=1)

    # As torchvision: a dilated stage's first block keeps the previous dilation, the others
    # multiply it by the stride the stage gave up.
    dilations, dilation = [], 1
    for index in range(len(self.stage_sizes)):
      dilated = index > 0 and bool(self.dilate[index - 1])
      previous, dilation = dilation, dilation * (2 if dilated else 1)
      dilations.append((dilated, previous, dilation))

    def stage(index, num_blocks):
      dilated, previous, dilation = dilations[index]

      def run(x):
        for j in range(num_blocks):
          stride = 2 if index > 0 and j == 0 and not dilated else 1
          x = self.block(self.width * 2**index, stride, dtype=self.dtype,
                         dilation=previous if j == 0 else dilation,
                         name=f"layer{index + 1}_{j}")(x, train)
        return x
      return run

    stages = [("stem", stem)]
    stages += [(f"stage{i + 1}", stage(i, n)) for i, n in enumerate(self.stage_sizes)]
    stages.append(("pooled", lambda x: jnp.mean(x, axis=(1, 2))))
    if self.num_classes is not None:
      stages.append(("logits", lambda x: nn.Dense(self.num_classes, dtype=self.dtype,
                                                  name="fc")(x)))
    return stages


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=Bottleneck)
ResNet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), block=Bottleneck)
ResNet152 = functools.partial(ResNet, stage_sizes=(3, 8, 36, 3), block=Bottleneck)


def torch_module_name(path: Sequence[str]) -> str:
  """Flax module path -> torchvision/timm module name, e.g. (layer2_0, downsample_bn) ->
  layer2.0.downsample.1."""
  renames = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
  parts = []
  for name in path:
    if name.startswith("layer") and "_" in name:
      name = name.replace("_", ".", 1)
    parts.append(renames.get(name, name))
  return ".".join(parts)
