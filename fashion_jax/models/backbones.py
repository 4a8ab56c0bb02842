"""Backbones with torchvision/timm ImageNet weights: name -> Flax module and key mapping.

`convert_state_dict("resnet50", state_dict)` turns a torchvision (or timm) state dict into Flax
variables for `ResNet50()`; `convert_file` does it file to file (tools/convert_weights.py).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fashion_jax.models import fcn, resnet, vgg, weights


@dataclasses.dataclass(frozen=True)
class Backbone:
  """A pretrainable backbone.

  Attributes:
    build: `build(num_classes=..., dtype=...)` -> the Flax module.
    torch_module_name: Flax module path -> torchvision module name.
    torch_renames: other spellings of torch module-name prefixes (timm) -> torchvision's.
    torch_dropped: prefixes of state-dict keys the Flax model has no use for (dropped first).
    num_classes: the classifier size of the published weights (ImageNet 1000, VOC 21).
  """
  build: Callable[..., nn.Module]
  torch_module_name: Callable[[Sequence[str]], str]
  torch_renames: Mapping[str, str] = dataclasses.field(default_factory=dict)
  torch_dropped: tuple[str, ...] = ()
  num_classes: int = 1000


def _vgg_names(block_sizes, batch_norm):
  names = vgg.torch_module_names(block_sizes, batch_norm)
  return lambda path: ".".join([names[path[0]], *path[1:]])


BACKBONES: dict[str, Backbone] = {
    "resnet18": Backbone(resnet.ResNet18, resnet.torch_module_name),
    "resnet34": Backbone(resnet.ResNet34, resnet.torch_module_name),
    "resnet50": Backbone(resnet.ResNet50, resnet.torch_module_name),
    "resnet101": Backbone(resnet.ResNet101, resnet.torch_module_name),
    "resnet152": Backbone(resnet.ResNet152, resnet.torch_module_name),
    "vgg16": Backbone(vgg.VGG16, _vgg_names((2, 2, 3, 3, 3), False), vgg.TIMM_RENAMES),
    "vgg16_bn": Backbone(vgg.VGG16BN, _vgg_names((2, 2, 3, 3, 3), True), vgg.TIMM_RENAMES),
    # Segmenters (build(num_classes=21)): torchvision's fcn_resnet50/101 state dicts.
    "fcn_resnet50": Backbone(fcn.FCNResNet50, fcn.torch_module_name,
                             torch_dropped=fcn.DROPPED_TORCH_PREFIXES, num_classes=21),
    "fcn_resnet101": Backbone(fcn.FCNResNet101, fcn.torch_module_name,
                              torch_dropped=fcn.DROPPED_TORCH_PREFIXES, num_classes=21),
}


def get(name: str) -> Backbone:
  if name not in BACKBONES:
    raise ValueError(f"unknown backbone {name!r}; known: {sorted(BACKBONES)}")
  return BACKBONES[name]


DEFAULT = "default"  # the published weights' classifier size (`Backbone.num_classes`)


def variables_template(name: str, num_classes: int | None | str = DEFAULT):
  """Shapes and dtypes of the backbone's variables, without computing anything."""
  if num_classes == DEFAULT:
    num_classes = get(name).num_classes
  model = get(name).build(num_classes=num_classes)
  size = 32  # the variables do not depend on the input size; keep tracing cheap
  return jax.eval_shape(
      functools.partial(model.init, train=False), jax.random.key(0),
      jnp.zeros((1, size, size, 3), jnp.float32))


def convert_state_dict(name: str, state_dict: Mapping[str, np.ndarray],
                       num_classes: int | None | str = DEFAULT, source: str = "state dict"):
  """torchvision/timm state dict -> Flax variables of `get(name).build(num_classes=...)`."""
  backbone = get(name)
  state_dict = {k: v for k, v in state_dict.items() if not k.startswith(backbone.torch_dropped)}
  return weights.torch_to_flax(state_dict, variables_template(name, num_classes),
                               backbone.torch_module_name, renames=backbone.torch_renames,
                               source=f"{source} as {name}")


def convert_file(name: str, src: str | os.PathLike, dst: str | os.PathLike,
                 num_classes: int | None | str = DEFAULT):
  """Reads a torch state dict file, converts it for backbone `name`, writes `dst`."""
  variables = convert_state_dict(name, weights.read_state_dict(src), num_classes,
                                 source=os.fspath(src))
  weights.save_variables(dst, variables, metadata={
      "backbone": name, "num_classes": str(num_classes), "source": os.path.basename(src)})
  return variables
