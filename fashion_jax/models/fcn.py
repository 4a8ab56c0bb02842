"""Fully convolutional person segmenter in torchvision's FCN-ResNet layout (Long et al. 2015, as
torchvision ships it): the segmented images of SisterNetwork come from it.

The SisterNetwork paper removed backgrounds with FCN-8s (a VGG-16 FCN) trained on PASCAL VOC,
keeping the pixels classified as a person. VOC-trained FCN weights that can be converted and
checked today are torchvision's `fcn_resnet50` / `fcn_resnet101` (COCO images, the 21 VOC
labels): the same FCN idea and the same labels on a ResNet. That is the layout here, so a user
converts those files with tools/convert_weights.py and loads them like every other backbone.

Layout: ResNet-50/101 with layer3 and layer4 dilated (output stride 8), an FCN head on layer4
(3x3 conv to 512, batch norm, ReLU, dropout 0.1, 1x1 conv to the 21 classes) and bilinear
upsampling of the logits to the input size (align_corners=False, as torchvision). The auxiliary
head on layer3 is used only in torchvision's training and is dropped on conversion.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fashion_jax.models import layers, resnet

VOC_PERSON = 15  # index of "person" among the 21 PASCAL VOC labels (0 is background)
DROPPED_TORCH_PREFIXES = ("aux_classifier.",)


class FCN(nn.Module):
  """[B, H, W, 3] ImageNet-normalised images -> {"stage4": [B, H/8, W/8, 2048],
  "logits": [B, H, W, num_classes]}."""

  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  num_classes: int = 21
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    features = resnet.ResNet(stage_sizes=tuple(self.stage_sizes), num_classes=None,
                             dilate=(False, True, True), dtype=self.dtype,
                             name="backbone")(x, train, stop_at="stage4")["stage4"]
    conv = layers.conv(self.dtype)
    y = conv(features.shape[-1] // 4, (3, 3), padding=1, use_bias=False,
             name="classifier_0")(features)
    y = nn.relu(layers.batch_norm(train, self.dtype)(name="classifier_1")(y))
    y = nn.Dropout(0.1, deterministic=not train)(y)
    y = conv(self.num_classes, (1, 1), name="classifier_4")(y)
    return {"stage4": features,
            "logits": layers.bilinear_resize(y.astype(jnp.float32), x.shape[1:3])}


FCNResNet50 = functools.partial(FCN, stage_sizes=(3, 4, 6, 3))
FCNResNet101 = functools.partial(FCN, stage_sizes=(3, 4, 23, 3))


def torch_module_name(path: Sequence[str]) -> str:
  """(backbone, layer1_0, conv1) -> backbone.layer1.0.conv1; (classifier_4,) -> classifier.4."""
  head, *rest = path
  if head == "backbone":
    return f"backbone.{resnet.torch_module_name(rest)}"
  return head.replace("_", ".")


def person_mask(logits: jax.Array) -> jax.Array:
  """[B, H, W] bool: the pixels whose most likely VOC label is a person."""
  return jnp.argmax(logits, axis=-1) == VOC_PERSON
