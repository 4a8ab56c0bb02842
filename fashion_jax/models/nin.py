"""NIN trunk of the Multi-Task Network (MTN) of the multi-task curriculum transfer poster.

The poster's table (`kxk-channels-stride` per conv), read as five NIN blocks of one spatial conv
followed by 1x1 ("cccp") convs:
  nin1   Conv1 7x7-96-2, Conv1_1 1x1-96-1, Conv1_2 1x1-96-1
  pool1  max-pool 3x3
  nin2   Conv2 5x5-256-2, Conv2_1 1x1-256-1, Conv2_2 1x1-256-1
  nin3   Conv3 3x3-512-1, Conv3_1 1x1-512-1, Conv3_2 1x1-512-1
  nin4   Conv4 3x3-1024-1, Conv4_1 1x1-1024-1, Conv4_2 1x1-512-1, Conv4_3 1x1-384-1
  nin5   Conv5 3x3-512-2, Conv5_1 1x1-512-1, Conv5_2 1x1-512-1
  pool5  max-pool 3x3
The FC-1024, FC-1024, FC-N_attr branches per attribute group belong to the MTCT system.

Choices the table leaves open, made here:
  - the printed NIN labels sit one or two rows off the convs; the grouping above follows the
    conv numbering (ConvK, ConvK_1, ConvK_2, ...), which is what NIN blocks are;
  - ReLU after every conv (as in NIN); no batch norm by default (`batch_norm=True` adds it after
    every conv, for training from scratch, since no ImageNet NIN weights exist in torchvision);
  - "same"-style padding k//2 on every conv; both 3x3 max-pools have stride 2 and padding 1;
  - input 224x224: the spatial sizes are 112 (nin1), 56 (pool1), 28 (nin2-nin4), 14 (nin5) and
    7 (pool5), so the trunk ends in [B, 7, 7, 512] as VGG's and ResNet's do at 224.
Stages tappable by name: nin1, pool1, nin2, nin3, nin4, nin5, pool5.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fashion_jax.models import layers

# (stage, [(conv name, kernel, channels, stride), ...]) in order; pools are stages of their own.
MTN_TABLE = (
    ("nin1", (("conv1", 7, 96, 2), ("conv1_1", 1, 96, 1), ("conv1_2", 1, 96, 1))),
    ("pool1", ()),
    ("nin2", (("conv2", 5, 256, 2), ("conv2_1", 1, 256, 1), ("conv2_2", 1, 256, 1))),
    ("nin3", (("conv3", 3, 512, 1), ("conv3_1", 1, 512, 1), ("conv3_2", 1, 512, 1))),
    ("nin4", (("conv4", 3, 1024, 1), ("conv4_1", 1, 1024, 1), ("conv4_2", 1, 512, 1),
              ("conv4_3", 1, 384, 1))),
    ("nin5", (("conv5", 3, 512, 2), ("conv5_1", 1, 512, 1), ("conv5_2", 1, 512, 1))),
    ("pool5", ()),
)


class NIN(layers.StagedBackbone):
  """MTN's NIN trunk over NHWC images: returns {stage name: output} (see the module docstring).

  Attributes:
    batch_norm: BN after every conv (not in the poster's table).
    width_scale: every conv's channels multiplied by this (1: the table; smaller for CPU runs).
    dtype: computation dtype; parameters stay float32.
  """
  batch_norm: bool = False
  width_scale: float = 1.0
  dtype: Any = jnp.float32

  def _stages(self, train: bool) -> list[layers.Stage]:
    def block(convs):
      def run(x):
        for name, kernel, channels, stride in convs:
          channels = max(1, round(channels * self.width_scale))
          x = layers.conv(self.dtype)(channels, (kernel, kernel), strides=stride,
                                      padding=kernel // 2, name=name)(x)
          if self.batch_norm:
            x = layers.batch_norm(train, self.dtype)(name=f"{name}_bn")(x)
          x = nn.relu(x)
        return x
      return run

    pool = lambda x: layers.max_pool(x, 3, 2, padding=1)
    return [(name, block(convs) if convs else pool) for name, convs in MTN_TABLE]
