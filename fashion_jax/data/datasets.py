"""Dataset registry: name -> TFDS builder, with a clear error when data is not prepared.

Every builder lives in its own package under `fashion_jax.data` (TFDS needs that for
`dataset_info_from_configs`) and yields the shared schema of `fashion_jax.data.schema`.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os

from absl import logging

from fashion_jax.data import schema

# name -> "module:Class"; imported lazily so that `import fashion_jax` stays light.
BUILDERS = {
    "fashion_synth": "fashion_jax.data.fashion_synth.fashion_synth:FashionSynth",
    # Real datasets (manual download; `python -m fashion_jax.data.prepare`, docs/datasets.md).
    "deepfashion_attributes": "fashion_jax.data.deepfashion_attributes:DeepfashionAttributes",
    "deepfashion_landmarks": "fashion_jax.data.deepfashion_landmarks:DeepfashionLandmarks",
    "fashionai_keypoints": "fashion_jax.data.fashionai_keypoints:FashionaiKeypoints",
    "clothing_attributes": "fashion_jax.data.clothing_attributes:ClothingAttributes",
    "shop_street": "fashion_jax.data.shop_street:ShopStreet",
}



def default_data_dir() -> str:
  """$FASHION_JAX_DATA_DIR, else ~/tensorflow_datasets (read at call time)."""
  return os.path.expanduser(os.environ.get("FASHION_JAX_DATA_DIR", "~/tensorflow_datasets"))


def builder_class(name: str):
  if name not in BUILDERS:
    raise ValueError(f"unknown dataset {name!r}; known: {sorted(BUILDERS)}")
  module, cls = BUILDERS[name].split(":")
  return getattr(importlib.import_module(module), cls)


def get_builder(name: str, data_dir: str | None = None, config=None, **kwargs):
  """The TFDS builder for `name` (array_record files under `data_dir`).

  Args:
    config: a builder config name or object, a dict of the builder's `make_config` keyword
      arguments (e.g. the sizes of `fashion_synth`), or None for the default.
  """
  cls = builder_class(name)
  data_dir = data_dir or default_data_dir()
  if isinstance(config, dict):
    config = cls.make_config(**config)
  elif config is None and getattr(cls, "CONFIG_FROM_FILES", False):
    config = prepared_config(name, data_dir)  # configs named by what prepare found
  return cls(data_dir=data_dir, config=config, file_format="array_record", **kwargs)


def prepared_config(name: str, data_dir) -> str:
  """The one config of `name` prepared under `data_dir` (e.g. shop_street's `csv_9attr`)."""
  root = os.path.join(os.fspath(data_dir), name)
  found = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                 and not d.startswith(".")) if os.path.isdir(root) else []  # tfds' .config
  if len(found) != 1:
    raise ValueError(f"dataset {name!r} has {len(found)} prepared configs under {data_dir} "
                     f"({', '.join(found) or 'none'}): name one with data.builder_config")
  return found[0]


def prepared(builder) -> bool:
  """True when the builder's files are complete on disk."""
  return builder.data_path.exists() and (builder.data_path / "dataset_info.json").exists()


def ensure_prepared(builder, data_dir: str | None = None) -> None:
  """Generates a generator-backed dataset on first use (saying first what it will write and
  roughly how long it takes; one process at a time per dataset, the others wait and read it);
  refuses clearly for manual ones. `data_dir`: the root the user gives (`--data_dir`,
  `data.data_dir`), default `default_data_dir()`."""
  if prepared(builder):
    return
  data_dir = os.fspath(data_dir or default_data_dir())
  if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
    raise FileNotFoundError(not_prepared_message(builder, data_dir))
  with _preparing(data_dir, builder.name):
    if prepared(builder):  # made by another process while this one waited
      return
    estimate = getattr(builder, "generation_estimate", None)
    if estimate is not None:
      logging.warning("%s", estimate())
    builder.download_and_prepare()


def not_prepared_message(builder, data_dir: str) -> str:
  """The refusal of a manual dataset that is not prepared under `data_dir`: how to prepare it
  there, and which other configs of it are prepared there (a builder_config to name)."""
  asked = builder.builder_config.name if builder.builder_config else ""
  root = os.path.join(data_dir, builder.name)
  others = sorted(d for d in os.listdir(root) if d != asked and not d.startswith(".")
                  and os.path.isdir(os.path.join(root, d))) if os.path.isdir(root) else []
  found = (f" Prepared there: {', '.join(others)} (another builder config; to read it, pass "
           f"--config.data.builder_config={others[0]})." if others else "")
  return (f"dataset {builder.name!r} (config {asked!r}) is not prepared under {data_dir}."
          f"{found}\nPrepare it first:\n  python -m fashion_jax.data.prepare "
          f"--dataset={builder.name} --manual_dir=DIR --data_dir={data_dir}"
          + (f" --config={asked}" if asked else "")
          + f"\n\n{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}")


@contextlib.contextmanager
def _preparing(data_dir: str, name: str):
  """An exclusive lock on `<data_dir>/<name>.prepare.lock` while a dataset is generated: two
  runs starting together would otherwise write the same files (tfds FileExistsError)."""
  os.makedirs(data_dir, exist_ok=True)
  with open(os.path.join(data_dir, f".{name}.prepare.lock"), "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def dataset_spec(builder) -> schema.DatasetSpec:
  """The `DatasetSpec` a builder stored in its metadata."""
  text = builder.info.metadata.get("dataset_spec") if builder.info.metadata else None
  if text is None:
    raise ValueError(f"dataset {builder.name!r} has no 'dataset_spec' in its metadata")
  return schema.DatasetSpec.from_json(text)
