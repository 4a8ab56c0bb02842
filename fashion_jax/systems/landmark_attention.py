"""Landmark-driven attention network (Liu & Lu, "Deep Fashion Analysis with Feature Map
Upsampling and Landmark-Driven Attention", 2018).

VGG-16 up to conv4_3 (28x28x512 for a 224x224 input) feeds two branches (section 3.2, Fig. 1;
below): the landmark branch upsamples to 224x224x8 heatmaps; the
attention branch reads conv4_3 and the heatmaps' channel-max resized to 28x28 and produces
A in (0, 1)^{28x28x512}. The features become F_new = (1/2 + A) * F, the rest of VGG-16 (pool4,
conv5, pool5, fc6, fc7) runs on them, and two linear heads predict the category and the
attributes. With `attention=False` F is left unchanged: the plain multi-task VGG-16 baseline.

Loss (`fashion_jax.systems.deepfashion`): the paper's (1/N) L2 on heatmaps against Gaussian targets
(maps of landmarks that are not visible masked), category cross-entropy, attribute binary
cross-entropy with the public code's class weights (0.1 negative, 1 positive) and unknown labels
masked, weighted by `config.loss.weights`.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fashion_jax.data import image_conventions, schema
from fashion_jax.models import layers, vgg
from fashion_jax.systems import deepfashion
from fashion_jax.systems.base import System

# --- the two branches after conv4_3 ---------------------------------------------------------
# Sizes the paper states are asserted in the tests: 28x28x64 after the first 1x1 convolution,
# 56x56x64 after the first upsampling, 224x224x16 before the last 1x1 convolution, 224x224x8
# heatmaps; the attention squeezes to 7x7 and comes back to 28x28x512.


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


# --- the network and its system -------------------------------------------------------------


class LandmarkAttentionNet(nn.Module):
  """`__call__(batch, train)` reads `batch["image"]` [B, 224, 224, 3] uint8 and returns
  `landmark_heatmaps` [B, 224, 224, 8], `category_logits` [B, C], `attribute_logits` [B, A]
  and, with attention, `attention` A [B, 28, 28, 512] (before the 1/2 offset)."""

  num_categories: int
  num_attributes: int
  num_landmarks: int = len(schema.LANDMARK_NAMES)
  attention: bool = True
  vgg_widths: Sequence[int] = vgg.WIDTHS
  fc_width: int = 4096
  landmark_widths: Sequence[int] = (64, 64, 32, 16)
  squeeze_widths: Sequence[int] = (32, 28)
  expand_width: int = 64
  dropout_rate: float = 0.5
  batch_norm: bool = False  # VGG-16-BN backbone (the paper: plain VGG-16 from ImageNet)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, batch, train: bool = False):
    image = image_conventions.normalize(batch["image"], self.dtype)
    backbone = vgg.VGG16(num_classes=None, widths=self.vgg_widths, fc_width=self.fc_width,
                         dropout_rate=self.dropout_rate, batch_norm=self.batch_norm,
                         dtype=self.dtype, name="backbone")
    features = backbone(image, train, stop_at="conv4_3")["conv4_3"]
    heatmaps, _ = LandmarkBranch(self.num_landmarks, self.landmark_widths,
                                              dtype=self.dtype, name="landmark_branch")(features)
    outputs = {"landmark_heatmaps": heatmaps.astype(jnp.float32)}
    if self.attention:
      info = landmark_information(heatmaps, features.shape[1:3])
      attention, _ = AttentionBranch(self.squeeze_widths, self.expand_width,
                                                  dtype=self.dtype,
                                                  name="attention_branch")(features, info)
      features = (0.5 + attention) * features
      outputs["attention"] = attention.astype(jnp.float32)
    pooled = backbone(features, train, start_after="conv4_3")["fc7"]
    outputs["category_logits"] = nn.Dense(self.num_categories, dtype=self.dtype,
                                          name="category_head")(pooled).astype(jnp.float32)
    outputs["attribute_logits"] = nn.Dense(self.num_attributes, dtype=self.dtype,
                                           name="attribute_head")(pooled).astype(jnp.float32)
    return outputs


def make_module(model_cfg, spec: schema.DatasetSpec) -> LandmarkAttentionNet:
  if not spec.num_categories or not spec.num_attributes:
    raise ValueError("the landmark-attention network needs a dataset with categories and "
                     f"attributes; this one has {spec.num_categories} and "
                     f"{spec.num_attributes}")
  return LandmarkAttentionNet(
      num_categories=spec.num_categories, num_attributes=spec.num_attributes,
      attention=model_cfg.attention, vgg_widths=tuple(model_cfg.vgg_widths),
      fc_width=model_cfg.fc_width, landmark_widths=tuple(model_cfg.landmark_widths),
      squeeze_widths=tuple(model_cfg.squeeze_widths), expand_width=model_cfg.expand_width,
      dropout_rate=model_cfg.dropout_rate, batch_norm=model_cfg.get("batch_norm", False),
      dtype=jnp.dtype(model_cfg.dtype))


SYSTEM = System(
    name="landmark_attention", make_module=make_module, batch_fields=deepfashion.BATCH_FIELDS,
    labels=deepfashion.LABELS, loss=deepfashion.loss, predict=deepfashion.predict,
    score=deepfashion.score, report=deepfashion.report, best_metric=("category/top3", "max"),
    mean_baseline=deepfashion.mean_baseline)
