"""The datasets of one run, opened once: builders, specs, random-access sources, record columns
and the train/eval/test selections of any data config (a phase may read another dataset)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import tqdm
from absl import logging
from jax.experimental import multihost_utils

from fashion_jax import config_base
from fashion_jax.data import datasets, folds, schema, splits

_PIXELS = ("image", "mask")


class DamagedDataError(ValueError):
  """A prepared dataset's files do not read (truncated or overwritten)."""


class CheckedSource:
  """A split's random-access source whose read errors name the dataset, the split and the way
  out (prepare again), instead of a record reader's message about chunk boundaries."""

  def __init__(self, source, name: str, split: str, folder: str):
    self._source, self._where = source, (name, split, folder)

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int):
    try:
      return self._source[index]
    except (IndexError, KeyError):
      raise
    except Exception as e:  # noqa: BLE001 - array_record/tfds raise RuntimeError and others
      name, split, folder = self._where
      reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
      raise DamagedDataError(
          f"the prepared files of {name} ({split} split, record {index}) in {folder} do not "
          f"read: {reason}. They were truncated or changed after preparing: prepare the "
          "dataset again (python -m fashion_jax.data.prepare ... --overwrite), or for the "
          "synthetic set remove that folder to have it generated again.") from None


@dataclasses.dataclass
class OpenDataset:
  builder: object
  spec: schema.DatasetSpec
  sources: dict  # stored split -> random-access source of decoded examples

  @property
  def name(self) -> str:
    config = self.builder.builder_config
    return f"{self.builder.name}/{config.name}" if config else self.builder.name

  @property
  def sizes(self) -> dict[str, int]:
    return {split: len(source) for split, source in self.sources.items()}


def _key(data_cfg) -> tuple:
  config = config_base.builder_config(data_cfg)
  config = tuple(sorted(config.items())) if isinstance(config, dict) else config
  return config_base.dataset_name(data_cfg), config, data_cfg.data_dir or ""


class Catalog:
  """Opens each dataset a run reads once and remembers what it read of it."""

  def __init__(self, progress: bool = True):
    self.progress = progress
    self._open, self._columns, self._selections = {}, {}, {}

  def open(self, data_cfg) -> OpenDataset:
    key = _key(data_cfg)
    if key not in self._open:
      name = config_base.dataset_name(data_cfg)
      make = lambda: datasets.get_builder(name, data_cfg.data_dir or None,
                                          config=config_base.builder_config(data_cfg))
      builder = make()
      if jax.process_index() == 0:
        datasets.ensure_prepared(builder, data_cfg.data_dir or None)
      multihost_utils.sync_global_devices(f"dataset {name} prepared")
      if not datasets.prepared(builder) or not builder.info.splits:
        builder = make()  # made before the files were (here or by another process): read anew
      sources = {split: CheckedSource(source, name, split, str(builder.data_path))
                 for split, source in builder.as_data_source().items()}
      for source in sources.values():  # the ends of each file: a truncation shows at once
        for index in {0, len(source) - 1} if len(source) else ():
          source[index]
      self._open[key] = OpenDataset(builder, datasets.dataset_spec(builder), sources)
    return self._open[key]

  def columns(self, data_cfg, split: str, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """{field: [N] values of every record of `split`}, images left undecoded (cached)."""
    import tensorflow_datasets as tfds

    key = (_key(data_cfg), split)
    have = self._columns.setdefault(key, {})
    wanted = [f for f in fields if f not in have]
    if wanted:
      dataset = self.open(data_cfg)
      skip = {name: tfds.decode.SkipDecoding() for name in _PIXELS}
      source = dataset.builder.as_data_source(split, decoders=skip)
      rows = {f: [] for f in wanted}
      for index in tqdm.trange(len(source), desc=f"reading {dataset.name}:{split} ids",
                               disable=not self.progress or jax.process_index() != 0,
                               leave=False):
        example = source[index]
        for f in wanted:
          rows[f].append(example[f])
      have.update({f: np.asarray(v) for f, v in rows.items()})
    return {f: have[f] for f in fields}

  def selections(self, data_cfg, labels) -> dict[str, splits.Selection]:
    """Train/eval/test selections of `data_cfg` with its domain filters applied (cached)."""
    fields = ("train_split", "eval_split", "test_split", "domain", "eval_domain", "num_folds",
              "fold")
    key = (_key(data_cfg), tuple(labels), *(data_cfg[f] for f in fields),
           tuple(sorted(data_cfg.holdout.items())), tuple(data_cfg.get("categories", ())))
    if key not in self._selections:
      self._selections[key] = self._select(data_cfg, labels)
    return self._selections[key]

  def _select(self, data_cfg, labels) -> dict[str, splits.Selection]:
    dataset = self.open(data_cfg)
    chosen = splits.resolve(data_cfg, dataset.spec, dataset.sizes, labels,
                            lambda split, fields: self.columns(data_cfg, split, fields))
    for role, domain in (("train", data_cfg.domain), ("eval", data_cfg.eval_domain),
                         ("test", data_cfg.eval_domain)):
      if domain:
        selection = chosen[role]
        domains = self.columns(data_cfg, selection.split, ("domain",))["domain"]
        chosen[role] = splits.restrict_to_domain(selection, domain, domains)
    categories = tuple(data_cfg.get("categories", ()))
    if categories:  # every role: the model is trained and scored on these garments only
      for role, selection in chosen.items():
        codes = self.columns(data_cfg, selection.split, ("fashionai_category",))
        chosen[role] = splits.restrict_to_categories(selection, categories,
                                                     codes["fashionai_category"])
    for role, selection in chosen.items():
      logging.info("%s data: %s %s", role, dataset.name, selection.description)
    return chosen

  def source(self, data_cfg, selection: splits.Selection):
    """The random-access source of a selection."""
    source = self.open(data_cfg).sources[selection.split]
    return source if selection.indices is None else folds.IndexedSource(source,
                                                                        selection.indices)
