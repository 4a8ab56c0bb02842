"""The two branches the landmark-driven attention network (Liu & Lu, 2018) adds after VGG-16's
conv4_3 (paper section 3.2, Fig. 1).

Sizes the paper states are asserted in the tests: 28x28x64 after the first 1x1 convolution,
56x56x64 after the first upsampling, 224x224x16 before the last 1x1 convolution, 224x224x8
heatmaps; the attention squeezes to 7x7 and comes back to 28x28x512.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fashion_jax.models import layers


def upsample_2x(features: int, dtype, name: str) -> layers.Upsample2x:
  """The paper's 4x4 transposed convolution with stride 2 and padding 1 (doubles H and W).

  PyTorch's padding p of a transposed convolution removes p pixels from each side of the
  full output; Flax's `nn.ConvTranspose` expresses the same output as explicit padding
  (k - 1 - p) on the dilated input: 4 - 1 - 1 = 2 on both sides. `layers.Upsample2x` is that
  module with the same parameters, computed without the dilated input (faster gradients).
  """
  return layers.Upsample2x(features, dtype=dtype, name=name)


class LandmarkBranch(nn.Module):
  """1x1 conv to 64, then [two 3x3 convs + 4x4 stride-2 transposed conv] x 3, then 1x1 conv to
  the heatmaps: 28x28x512 -> 224x224xL.

  The paper fixes 64 channels at 28x28 and 56x56 and 16 at 224x224; the 112x112 width (32) is
  not stated and is chosen halfway.
  """

  num_landmarks: int = 8
  widths: Sequence[int] = (64, 64, 32, 16)  # 28, 56, 112, 224
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, conv4_3: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    x = nn.relu(nn.Conv(self.widths[0], (1, 1), dtype=self.dtype, name="reduce")(conv4_3))
    taps = {"reduce": x}
    for i, width in enumerate(self.widths[1:]):
      for j in range(2):
        x = nn.relu(nn.Conv(x.shape[-1], (3, 3), padding=1, dtype=self.dtype,
                            name=f"up{i + 1}_conv{j + 1}")(x))
      x = nn.relu(upsample_2x(width, self.dtype, f"up{i + 1}_deconv")(x))
      taps[f"up{i + 1}"] = x
    heatmaps = nn.Conv(self.num_landmarks, (1, 1), dtype=self.dtype, name="heatmaps")(x)
    return heatmaps, taps


def landmark_information(heatmaps: jax.Array, size: tuple[int, int]) -> jax.Array:
  """M_info: channel-wise max of the heatmaps bilinearly resized to `size`.

  Antialiased resizing (a triangle filter over the covered pixels) keeps narrow peaks from
  falling between the samples of an 8x downsampling; the paper says only "bilinear".

  Args:
    heatmaps: [B, H, W, L]. Returns: [B, h, w, 1].
  """
  b, _, _, num = heatmaps.shape
  small = jax.image.resize(heatmaps, (b, *size, num), method="bilinear", antialias=True)
  return jnp.max(small, axis=-1, keepdims=True)


class AttentionBranch(nn.Module):
  """concat(conv4_3, M_info) -> 1x1 conv to 32 -> two [3x3 conv + 2x2 max pool] (28 -> 7) ->
  two 4x4 stride-2 transposed convs (7 -> 28) -> sigmoid: A in (0, 1), 28x28x512.

  The paper prints the squeezed size as 7x7x28; the width between the two transposed
  convolutions (64) is not stated.
  """

  squeeze_widths: Sequence[int] = (32, 28)
  expand_width: int = 64
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, conv4_3: jax.Array, info: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = jnp.concatenate([conv4_3, info.astype(conv4_3.dtype)], axis=-1)
    x = nn.relu(nn.Conv(32, (1, 1), dtype=self.dtype, name="reduce")(x))
    for i, width in enumerate(self.squeeze_widths):
      x = nn.relu(nn.Conv(width, (3, 3), padding=1, dtype=self.dtype, name=f"squeeze{i + 1}")(x))
      x = layers.max_pool(x, 2, 2)
    squeezed = x
    x = nn.relu(upsample_2x(self.expand_width, self.dtype, "expand1")(x))
    x = upsample_2x(conv4_3.shape[-1], self.dtype, "expand2")(x)
    return nn.sigmoid(x), squeezed
