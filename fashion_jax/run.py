"""Everything one run needs, built once from the config: system, data, module, mesh, phases,
checkpoints and writers. Shared by training and by evaluation of an existing workdir."""

from __future__ import annotations

import functools
import json
import os

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from fashion_jax import checkpoints, config_base, models, optim, sharding, writers
from fashion_jax.data import datasets, pipeline
from fashion_jax.models import weights

CONFIG_FILE = "config.json"
SPEC_FILE = "dataset_spec.json"  # lets a run's model be rebuilt without its dataset on disk


class Subset:
  """The first `n` examples of a random-access source."""

  def __init__(self, source, n: int):
    self.source, self.n = source, min(n, len(source))

  def __len__(self):
    return self.n

  def __getitem__(self, index):
    if not 0 <= index < self.n:
      raise IndexError(index)
    return self.source[index]


def save_config(config, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
    f.write(config.to_json_best_effort(indent=2))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir!r} the workdir of a run?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load_dataset_spec(workdir: str):
  from fashion_jax.data import schema

  path = os.path.join(workdir, SPEC_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir!r} the workdir of a run?")
  with open(path) as f:
    return schema.DatasetSpec.from_json(f.read())


def open_builder(data_cfg):
  name = config_base.dataset_name(data_cfg)
  builder = datasets.get_builder(name, data_cfg.data_dir or None,
                                 config=config_base.builder_config(data_cfg))
  if jax.process_index() == 0:
    datasets.ensure_prepared(builder)
  multihost_utils.sync_global_devices("dataset prepared")
  return builder


class Run:
  """The pieces of one run of `config` in `workdir`."""

  def __init__(self, config, workdir: str):
    self.config, self.workdir = config, workdir
    self.is_chief = jax.process_index() == 0
    self.system = models.get_system(config.system)
    self.builder = open_builder(config.data)
    self.spec = datasets.dataset_spec(self.builder)
    self.sources = self.builder.as_data_source()
    for split in (config.data.train_split, config.data.eval_split):
      if split not in self.sources:
        raise ValueError(f"dataset {self.builder.name!r} has no split {split!r}; it has "
                         f"{sorted(self.sources)}")
    self.module = self.system.make_module(config.model, self.spec)
    self.mesh = sharding.make_mesh(config.get("num_devices", 0))
    if config.batch_size % self.mesh.size:
      raise ValueError(f"batch_size {config.batch_size} is not divisible by the "
                       f"{self.mesh.size} devices of the mesh")
    self.steps_per_epoch = len(self.sources[config.data.train_split]) // config.batch_size
    if self.steps_per_epoch == 0:
      raise ValueError(f"the training split has fewer examples than batch_size "
                       f"{config.batch_size}")
    self.phases = optim.resolve_phases(config, self.steps_per_epoch)
    self.total_steps = self.phases[-1].end_step
    self.checkpointer = checkpoints.Checkpointer(workdir, *self.system.best_metric)
    self.writer = writers.MetricWriter(workdir, enabled=self.is_chief)
    if self.is_chief:
      save_config(config, workdir)
      with open(os.path.join(workdir, SPEC_FILE), "w") as f:
        f.write(self.spec.to_json())
    logging.info("%s on %s: %d steps/epoch, phases %s, mesh %s", config.system, self.builder.name,
                 self.steps_per_epoch, [(p.name, p.num_steps) for p in self.phases],
                 dict(self.mesh.shape))

  def train_source(self, phase: optim.Phase):
    return self.sources[phase.data.train_split]

  def eval_source(self, split: str | None = None):
    source = self.sources[split or self.config.data.eval_split]
    limit = self.config.data.get("eval_max_examples", 0)
    return Subset(source, limit) if limit else source

  def device_fields(self, batch: dict) -> dict:
    """The fields the model and loss read; everything else stays on the host."""
    return {k: batch[k] for k in self.system.batch_fields}

  @functools.cached_property
  def predict_step(self):
    """(variables, batch) -> the system's predictions; compiled once per run."""
    return jax.jit(lambda v, b: self.system.predict(self.module.apply(v, b, train=False), b))

  def init_variables(self) -> dict:
    """Model variables initialised from `config.seed` (identical on every process), with the
    backbone replaced by `config.model.pretrained` weights when a path is given."""
    example_fn = pipeline.make_example_fn(self.config.data, train=False)
    example = example_fn(self.sources[self.config.data.train_split][0], np.random.default_rng(0))
    sample = {k: np.asarray(v)[None] for k, v in self.device_fields(example).items()}
    key = jax.random.PRNGKey(self.config.seed)
    init = jax.jit(lambda k, b: self.module.init({"params": k, "dropout": k}, b, train=False))
    variables = dict(init(key, sample))
    model_cfg = self.config.model
    if model_cfg.get("pretrained"):  # e.g. ImageNet weights from tools/convert_weights.py
      variables = weights.load_pretrained(variables, model_cfg.pretrained,
                                          at=model_cfg.pretrained_at,
                                          allow_unused=tuple(model_cfg.pretrained_unused))
      logging.info("backbone %r loaded from %s", model_cfg.pretrained_at, model_cfg.pretrained)
    return variables

  def close(self) -> None:
    self.checkpointer.close()
    self.writer.close()
