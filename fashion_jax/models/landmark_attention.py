"""Landmark-driven attention network (Liu & Lu, "Deep Fashion Analysis with Feature Map
Upsampling and Landmark-Driven Attention", 2018).

VGG-16 up to conv4_3 (28x28x512 for a 224x224 input) feeds two branches
(`fashion_jax.models.lda_branches`): the landmark branch upsamples to 224x224x8 heatmaps; the
attention branch reads conv4_3 and the heatmaps' channel-max resized to 28x28 and produces
A in (0, 1)^{28x28x512}. The features become F_new = (1/2 + A) * F, the rest of VGG-16 (pool4,
conv5, pool5, fc6, fc7) runs on them, and two linear heads predict the category and the
attributes. With `attention=False` F is left unchanged: the plain multi-task VGG-16 baseline.

Loss (`fashion_jax.models.multitask`): the paper's (1/N) L2 on heatmaps against Gaussian targets
(maps of landmarks that are not visible masked), category cross-entropy, attribute binary
cross-entropy with the public code's class weights (0.1 negative, 1 positive) and unknown labels
masked, weighted by `config.loss.weights`.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from fashion_jax.data import image_conventions, schema
from fashion_jax.models import lda_branches, multitask, vgg
from fashion_jax.models.base import System


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
    heatmaps, _ = lda_branches.LandmarkBranch(self.num_landmarks, self.landmark_widths,
                                              dtype=self.dtype, name="landmark_branch")(features)
    outputs = {"landmark_heatmaps": heatmaps.astype(jnp.float32)}
    if self.attention:
      info = lda_branches.landmark_information(heatmaps, features.shape[1:3])
      attention, _ = lda_branches.AttentionBranch(self.squeeze_widths, self.expand_width,
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
    name="landmark_attention", make_module=make_module, batch_fields=multitask.BATCH_FIELDS,
    labels=multitask.LABELS, loss=multitask.loss, predict=multitask.predict,
    score=multitask.score, report=multitask.report, best_metric=("category/top3", "max"),
    mean_baseline=multitask.mean_baseline)
