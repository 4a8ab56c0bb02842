"""Pretrained weights: torch state dict -> Flax variables, saved without pickle, loaded anywhere.

Three steps:
  1. `read_state_dict(path)`: a torchvision/timm state dict as {key: numpy array}, from
     `.safetensors` (no torch needed) or `.pth`/`.pt`/`.bin` (needs torch; loaded with
     `weights_only=True`, so no code in the file runs).
  2. `torch_to_flax(state_dict, template, module_name)`: the Flax variables
     {"params": ..., "batch_stats": ...} of a backbone, transposed to Flax layouts; every missing,
     unexpected or mis-shaped key is reported in ONE `WeightImportError`.
  3. `save_variables` / `load_variables`: a `.safetensors` file of '/'-joined variable paths
     (`params/layer1_0/conv1/kernel`), which `config.model.pretrained` points at, and
     `load_pretrained(variables, path, at="backbone")` which puts such a file into the backbone
     sub-tree of a larger system's variables, leaving everything else as initialised.

Layouts: conv OIHW -> HWIO; linear [out, in] -> [in, out] (a conv-shaped linear weight
[out, C, H, W], as timm stores VGG's classifier, is flattened channel-first, matching
`layers.flatten_channels_first`); BN weight/bias/running_mean/running_var -> scale/bias/mean/var.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy

FORMAT = "fashion_jax.variables/1"

# (collection, Flax leaf name) -> torch parameter or buffer name.
_TORCH_LEAF = {("params", "kernel"): "weight", ("params", "scale"): "weight",
               ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
               ("batch_stats", "var"): "running_var"}
_IGNORED_TORCH_SUFFIXES = (".num_batches_tracked",)  # BN step counter, unused in eval and Flax
_TORCH_EXTENSIONS = (".pth", ".pt", ".bin", ".ckpt")


class WeightImportError(ValueError):
  """Weights that do not fit a model; the message lists every offending key."""


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a torch state dict: {"layer1.0.conv1.weight": array, ...}."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no weights file at {path}")
  if path.endswith(".safetensors"):
    return dict(safetensors.numpy.load_file(path))
  if not path.endswith(_TORCH_EXTENSIONS):
    raise ValueError(f"{path}: unknown weights format; expected .safetensors or one of "
                     f"{_TORCH_EXTENSIONS}")
  try:
    import torch
  except ImportError as e:
    raise ImportError(f"{path}: reading a torch pickle needs torch (pip install torch); or save "
                      "the state dict as .safetensors where torch is installed (docs/pretrained.md)"
                      ) from e
  state = torch.load(path, map_location="cpu", weights_only=True)
  for wrapper in ("state_dict", "model"):  # training checkpoints often nest the weights
    if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
      state = state[wrapper]
  if not isinstance(state, Mapping):
    raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
  as_numpy = lambda t: (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t).numpy()
  return {k: as_numpy(v.detach().cpu()) for k, v in state.items() if isinstance(v, torch.Tensor)}


def _flat(tree: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
  return flax.traverse_util.flatten_dict(flax.core.unfreeze(tree))


def _to_flax_layout(leaf: str, array: np.ndarray, target_ndim: int) -> np.ndarray:
  if leaf != "kernel":
    return array
  if target_ndim == 4 and array.ndim == 4:  # conv [O, I, kh, kw] -> [kh, kw, I, O]
    return array.transpose(2, 3, 1, 0)
  if target_ndim == 2 and array.ndim in (2, 4):  # linear [out, in] (or [out, C, H, W]) -> [in, out]
    return array.reshape(array.shape[0], -1).T
  return array  # wrong rank: reported as mis-shaped


def _raise_if_problems(what: str, missing: list[str], unexpected: list[str],
                       misshaped: list[str]) -> None:
  if not (missing or unexpected or misshaped):
    return
  lines = [f"{what}: {len(missing)} missing, {len(unexpected)} unexpected, "
           f"{len(misshaped)} mis-shaped"]
  for title, items in (("missing", missing), ("unexpected", unexpected),
                       ("mis-shaped", misshaped)):
    if items:
      lines.append(f"  {title}:")
      lines += [f"    {item}" for item in items]
  raise WeightImportError("\n".join(lines))


def torch_to_flax(state_dict: Mapping[str, np.ndarray], template: Mapping[str, Any],
                  module_name: Callable[[tuple[str, ...]], str], *,
                  renames: Mapping[str, str] | None = None,
                  source: str = "state dict") -> dict[str, Any]:
  """Maps a torch state dict onto Flax variables shaped like `template`.

  Args:
    state_dict: torch key -> array (torch layouts).
    template: the Flax variables to fill, e.g. `jax.eval_shape(model.init, ...)`; only the
      leaves' shapes and dtypes are used.
    module_name: Flax module path (e.g. ("layer1_0", "conv1")) -> torch module name
      ("layer1.0.conv1").
    renames: torch module-name prefixes to rewrite first (timm -> torchvision spellings).
    source: what the state dict came from, for the error message.

  Returns:
    {"params": ..., "batch_stats": ...} as nested dicts of numpy arrays in the template's dtypes.

  Raises:
    WeightImportError: listing all missing, unexpected and mis-shaped keys at once.
  """
  state = {}
  for key, value in state_dict.items():
    for old, new in (renames or {}).items():
      if key.startswith(old + "."):
        key = new + key[len(old):]
    state[key] = np.asarray(value)
  out, used, missing, misshaped = {}, set(), [], []
  for path, spec in _flat(template).items():
    collection, *modules, leaf = path
    flax_key = "/".join(path)
    if (collection, leaf) not in _TORCH_LEAF:
      missing.append(f"{flax_key} (no torch counterpart known for a {leaf!r} leaf)")
      continue
    key = f"{module_name(tuple(modules))}.{_TORCH_LEAF[collection, leaf]}"
    if key not in state:
      missing.append(f"{key} (for {flax_key} {tuple(spec.shape)})")
      continue
    used.add(key)
    value = _to_flax_layout(leaf, state[key], len(spec.shape))
    if value.shape != tuple(spec.shape):
      misshaped.append(f"{key} {state[key].shape} -> {flax_key} expects {tuple(spec.shape)}")
      continue
    # A copy: torch's .numpy() shares memory, and BN buffers change in place when torch trains.
    out[path] = np.array(value, dtype=spec.dtype, order="C", copy=True)
  unexpected = [f"{k} {state[k].shape}" for k in state
                if k not in used and not k.endswith(_IGNORED_TORCH_SUFFIXES)]
  _raise_if_problems(f"cannot import {source}", missing, unexpected, misshaped)
  return flax.traverse_util.unflatten_dict(out)


def save_variables(path: str | os.PathLike, variables: Mapping[str, Any],
                   metadata: Mapping[str, str] | None = None) -> None:
  """Writes Flax variables to `.safetensors` with '/'-joined keys (no pickle)."""
  tensors = {"/".join(k): np.ascontiguousarray(np.asarray(v)) for k, v in _flat(variables).items()}
  safetensors.numpy.save_file(tensors, os.fspath(path),
                              metadata={"format": FORMAT, **(metadata or {})})


def load_variables(path: str | os.PathLike) -> dict[str, Any]:
  """Reads a file written by `save_variables`: nested dicts of numpy arrays."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no converted weights at {path}")
  with safetensors.safe_open(path, framework="numpy") as f:
    metadata = f.metadata() or {}
  if metadata.get("format") != FORMAT:
    raise ValueError(f"{path}: not a fashion_jax variables file (metadata {metadata}); convert "
                     "torchvision/timm weights with tools/convert_weights.py first")
  return flax.traverse_util.unflatten_dict(safetensors.numpy.load_file(path), sep="/")


def _subtree(tree: Mapping[str, Any], at: tuple[str, ...]) -> Mapping[str, Any] | None:
  for name in at:
    if not isinstance(tree, Mapping) or name not in tree:
      return None
    tree = tree[name]
  return tree


def _under_any(key: tuple[str, ...], prefixes: Sequence[str]) -> bool:
  """Whether the path `key` lies under one of the '/'-joined `prefixes` ("fc" not "fc6")."""
  return any(key[:len(p.split("/"))] == tuple(p.split("/")) for p in prefixes)


def load_pretrained(variables: Mapping[str, Any], path: str | os.PathLike, *,
                    at: str | Sequence[str] = (),
                    allow_unused: Sequence[str] = ()) -> dict[str, Any]:
  """Replaces the backbone part of a system's variables with converted pretrained weights.

  Args:
    variables: the system's initialised variables {"params": ..., "batch_stats": ...}.
    path: a file written by `save_variables` (e.g. by tools/convert_weights.py).
    at: where the backbone sits in every collection, e.g. "backbone" for
      `variables["params"]["backbone"]` (a '/'-joined string or a sequence; empty: the whole
      model is the backbone).
    allow_unused: '/'-joined prefixes of file entries the system does not have and that may be
      dropped, e.g. ("fc",) when the system replaced ResNet's classifier with its own heads.

  Returns:
    New variables: the backbone's leaves from the file (cast to the system's dtypes), all other
    leaves as given.

  Raises:
    WeightImportError: listing every backbone variable the file lacks, every file entry the
      backbone lacks (outside `allow_unused`) and every shape mismatch, at once.
  """
  at = tuple(at.split("/")) if isinstance(at, str) and at else tuple(at)
  pretrained = load_variables(path)
  location = "/".join(at) or "<root>"
  if not any(isinstance(_subtree(tree, at), Mapping) for tree in variables.values()):
    top = sorted({name for tree in variables.values() for name in tree})
    raise WeightImportError(f"cannot load {os.fspath(path)}: the variables have no sub-tree "
                            f"{location!r}; their top-level names are {top}")
  missing, unexpected, misshaped, updates = [], [], [], {}
  collections = set(pretrained) | {c for c in variables if _subtree(variables[c], at)}
  for collection in sorted(collections):
    target = _subtree(variables.get(collection, {}), at)
    target = _flat(target) if isinstance(target, Mapping) else {}
    source = _flat(pretrained.get(collection, {}))
    for key, value in source.items():
      name = "/".join((collection, *key))
      if key not in target:
        if not _under_any(key, allow_unused):
          unexpected.append(f"{name} {value.shape}")
      elif value.shape != target[key].shape:
        misshaped.append(f"{name}: file {value.shape}, model {target[key].shape}")
      else:
        updates[(collection, *at, *key)] = jnp.asarray(value, dtype=target[key].dtype)
    missing += ["/".join((collection, *k)) for k in target if k not in source]
  _raise_if_problems(f"cannot load {os.fspath(path)} into the variables at {location!r}",
                     missing, unexpected, misshaped)
  flat = _flat(variables)
  flat.update(updates)
  return flax.traverse_util.unflatten_dict(flat)
