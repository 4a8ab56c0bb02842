"""VGG in the torchvision layout (plain and with batch norm).

Stages, each tappable by name (shapes for a [B, 224, 224, 3] input, VGG-16):
  conv1_1, conv1_2, pool1                 [B, 224, 224, 64] .. [B, 112, 112, 64]
  conv2_1, conv2_2, pool2                 .. [B, 56, 56, 128]
  conv3_1 .. conv3_3, pool3               .. [B, 28, 28, 256]
  conv4_1 .. conv4_3, pool4               [B, 28, 28, 512] (conv4_3) .. [B, 14, 14, 512]
  conv5_1 .. conv5_3, pool5               .. [B, 7, 7, 512]
  avgpool  adaptive average pool to 7x7   [B, 7, 7, 512] (as torchvision, for any input size)
  fc6, fc7  Dense 4096 + ReLU + Dropout   [B, 4096]
  logits    fc8 (only when num_classes is not None)   [B, num_classes]
A `convX_Y` stage is conv (+ BN) + ReLU, so `conv4_3` is the post-ReLU map the landmark-attention
network modifies before running the rest with `start_after="conv4_3"`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fashion_jax.models import layers

WIDTHS = (64, 128, 256, 512, 512)


class VGG(layers.StagedBackbone):
  """VGG over NHWC images; returns {stage name: output} (see the module docstring).

  Attributes:
    block_sizes: convs per block, e.g. (2, 2, 3, 3, 3) for VGG-16.
    batch_norm: BN after every conv (torchvision's `vgg16_bn`).
    num_classes: size of the last classifier layer; None drops it (taps end at `fc7`).
    widths: channels of the five conv blocks (torchvision's by default; narrower widths make the
      small CPU variants of the configs).
    fc_width: units of fc6 and fc7 (4096 in torchvision).
    dropout_rate: dropout after fc6 and fc7 in training.
    dtype: computation dtype; parameters stay float32.
  """
  block_sizes: Sequence[int]
  batch_norm: bool = False
  num_classes: int | None = 1000
  widths: Sequence[int] = WIDTHS
  fc_width: int = 4096
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  def _stages(self, train: bool) -> list[layers.Stage]:
    dense_init = nn.initializers.normal(0.01)  # torchvision's classifier init

    def conv(features, suffix):
      def run(x):
        x = layers.conv(self.dtype)(features, (3, 3), padding=1, name=f"conv{suffix}")(x)
        if self.batch_norm:
          x = layers.batch_norm(train, self.dtype)(name=f"bn{suffix}")(x)
        return nn.relu(x)
      return run

    def fc(name, flatten=False):
      def run(x):
        if flatten:
          x = layers.flatten_channels_first(x)
        x = nn.relu(nn.Dense(self.fc_width, dtype=self.dtype, kernel_init=dense_init,
                             name=name)(x))
        return nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      return run

    stages = []
    for block, (size, width) in enumerate(zip(self.block_sizes, self.widths, strict=True),
                                          start=1):
      stages += [(f"conv{block}_{i}", conv(width, f"{block}_{i}")) for i in range(1, size + 1)]
      stages.append((f"pool{block}", lambda x: layers.max_pool(x, 2, 2)))
    stages += [("avgpool", lambda x: layers.adaptive_avg_pool(x, (7, 7))),
               ("fc6", fc("fc6", flatten=True)), ("fc7", fc("fc7"))]
    if self.num_classes is not None:
      stages.append(("logits", lambda x: nn.Dense(self.num_classes, dtype=self.dtype,
                                                  kernel_init=dense_init, name="fc8")(x)))
    return stages


VGG16 = functools.partial(VGG, block_sizes=(2, 2, 3, 3, 3))
VGG16BN = functools.partial(VGG16, batch_norm=True)


def torch_module_names(block_sizes: Sequence[int], batch_norm: bool) -> dict[str, str]:
  """Flax module name -> torchvision module name (`features.N` counts ReLUs and pools too)."""
  names, index = {}, 0
  for block, size in enumerate(block_sizes, start=1):
    for i in range(1, size + 1):
      names[f"conv{block}_{i}"] = f"features.{index}"
      if batch_norm:
        names[f"bn{block}_{i}"] = f"features.{index + 1}"
      index += 3 if batch_norm else 2  # conv (+ bn) + relu
    index += 1  # max-pool
  names.update(fc6="classifier.0", fc7="classifier.3", fc8="classifier.6")
  return names


# timm's VGG keeps torchvision's `features` but renames (and reshapes to convs) the classifier.
TIMM_RENAMES = {"pre_logits.fc1": "classifier.0", "pre_logits.fc2": "classifier.3",
                "head.fc": "classifier.6"}
