"""Everything one run needs, built once from the config: system, data, module, mesh, phases,
checkpoints and writers. Shared by training and by evaluation of an existing workdir."""

from __future__ import annotations

import functools
import json
import os

import jax
from absl import logging

from fashion_jax import checkpoints, config_check, optim, sharding, state, steps, systems, writers
from fashion_jax import phases as phases_lib
from fashion_jax import workdir as workdir_files
from fashion_jax.data import batch_sources, catalog
from fashion_jax.eval_data import EvalData


class Run:
  """The pieces of one run of `config` in `workdir`."""

  def __init__(self, config, workdir: str):
    config_check.check(config)  # before anything is read or written
    self.config, self.workdir = config, workdir
    self.is_chief = jax.process_index() == 0
    self.system = systems.get_system(config.system)
    self.catalog = catalog.Catalog(progress=bool(config.progress))
    self.dataset = self.catalog.open(config.data)
    self.spec = self.dataset.spec
    if config.data.get("segmented"):  # segmented images are cut out by the stored masks
      missing = self.spec.missing_labels(config.data.train_split, ("mask",))
      if missing:
        raise ValueError(f"data.segmented = {config.data.segmented!r} needs masks, and "
                         f"{self.dataset.name} has none: prepare it with --masks (see "
                         "docs/datasets.md), or set data.segmented = ''")
    self.selections = self.catalog.selections(config.data, self.system.labels)
    self.module = self.system.make_module(config.model, self.spec)
    self.mesh = sharding.make_mesh(config.get("num_devices", 0))
    if config.batch_size % self.mesh.size:
      raise ValueError(f"batch_size {config.batch_size} is not divisible by the "
                       f"{self.mesh.size} devices of the mesh")
    self.phases = phases_lib.resolve_phases(config, self._steps_per_epoch)
    self.total_steps = self.phases[-1].end_step
    self.checkpointer = checkpoints.Checkpointer(workdir, *self.system.best_metric)
    self.writer = writers.MetricWriter(workdir, enabled=self.is_chief)
    self.eval_data = EvalData(config, self.system, self.catalog, self.dataset.name, self.spec,
                              self.mesh, workdir, self.is_chief)
    logging.info("%s on %s: phases %s, mesh %s", config.system, self.dataset.name,
                 [(p.name, p.num_steps, p.steps_per_epoch) for p in self.phases],
                 dict(self.mesh.shape))

  def record(self) -> None:
    """Writes config.json and dataset_spec.json: called once the run's state exists (initial
    or restored), so a resume that fails leaves the files of the run it could not resume."""
    if self.is_chief:
      workdir_files.save_config(self.config, self.workdir)
      workdir_files.save_dataset_spec(self.spec, self.workdir)

  # --- data -------------------------------------------------------------------------------

  def _train_selection(self, data_cfg):
    dataset = self.catalog.open(data_cfg)
    if not dataset.spec.same_heads(self.spec):
      raise ValueError(f"a phase reads {dataset.name}, whose categories or attributes differ "
                       f"from those of {self.dataset.name} that the model is sized for")
    missing = dataset.spec.missing_labels(data_cfg.train_split,
                                          self.system.batch_source.labels_for(data_cfg))
    if missing:
      raise ValueError(f"{self.config.system} forms its training batches by "
                       f"{'/'.join(missing)}, which {dataset.name}:{data_cfg.train_split} lacks")
    return self.catalog.selections(data_cfg, self.system.labels)["train"]

  def _steps_per_epoch(self, data_cfg) -> int:
    data = self._train_data(data_cfg, seed=0, start_step=0)
    steps = self.system.batch_source.num_rows(data) // self.config.batch_size
    if steps == 0:
      raise ValueError(f"the training data ({self._train_selection(data_cfg).description}) "
                       f"gives fewer batch rows than batch_size {self.config.batch_size}")
    return steps

  def train_data(self, phase: phases_lib.Phase, seed: int,
                 start_step: int) -> batch_sources.TrainData:
    """What the system's batch source reads in `phase`, from `start_step` of the phase."""
    return self._train_data(phase.data, seed, start_step)

  def _train_data(self, data_cfg, seed: int, start_step: int) -> batch_sources.TrainData:
    selection = self._train_selection(data_cfg)

    def columns(fields):
      every = self.catalog.columns(data_cfg, selection.split, fields)
      if selection.indices is None:
        return every
      return {k: v[selection.indices] for k, v in every.items()}

    return batch_sources.TrainData(
        source=self.catalog.source(data_cfg, selection), data_cfg=data_cfg, columns=columns,
        global_batch=self.config.batch_size, seed=seed, start_step=start_step,
        process_index=jax.process_index(), process_count=jax.process_count())

  # --- model ------------------------------------------------------------------------------

  def blank_example(self, data_cfg=None) -> dict:
    return self.system.batch_source.blank_example(data_cfg or self.config.data, self.spec)

  def device_fields(self, batch: dict) -> dict:
    return self.eval_data.device_fields(batch)

  def init_variables(self) -> dict:
    """Model variables initialised from `config.seed` (identical on every process), with the
    sub-modules named in `config.model.pretrained` loaded from their files."""
    variables = state.init_variables(self.module, self.system.batch_fields, self.blank_example(),
                                     self.config.seed)
    return state.load_pretrained(variables, self.config.model)

  @functools.cache  # noqa: B019 (one Run per run; phases are few)
  def module_for(self, index: int):
    """The module phase `index` trains: the run's, or one with the phase's model switches,
    which must keep every parameter and statistic (checked here, refused otherwise)."""
    phase = self.phases[index]
    if phase.model.to_dict() == self.config.model.to_dict():
      return self.module
    module = self.system.make_module(phase.model, self.spec)
    shapes = lambda m, d: jax.tree.map(lambda x: (x.shape, x.dtype), jax.eval_shape(
        lambda: state.init_variables(m, self.system.batch_fields, self.blank_example(d), 0)))
    if shapes(module, phase.data) != shapes(self.module, self.config.data):
      raise ValueError(f"phase {phase.name!r}: its model overrides change the model's "
                       "parameters; a phase may only switch behaviour that keeps them")
    return module

  def train_step(self, index: int, params, batch_stats):
    """The compiled update of phase `index` (frozen modules also keep their statistics)."""
    phase = self.phases[index]
    update_stats = None
    if phase.trainable != ".*" and batch_stats:
      update_stats = optim.updated_statistics(params, batch_stats, phase.trainable)
    return steps.compile_train_step(self.module_for(index), self.system, phase.loss,
                                    update_stats)

  # --- train states ----------------------------------------------------------------------

  def restore_or_init(self) -> tuple[state.TrainState, int]:
    """The run's newest checkpoint that restores, else its initial state, and the index of the
    phase whose optimiser it holds (`state.restore_or_init`)."""
    abstract = jax.eval_shape(lambda: state.init_variables(
        self.module, self.system.batch_fields, self.blank_example(), self.config.seed))
    return state.restore_or_init(
        phases=self.phases, checkpointer=self.checkpointer, mesh=self.mesh,
        seed=self.config.seed, abstract_variables=abstract, init_variables=self.init_variables,
        config_changes=self._config_changes())

  def _config_changes(self) -> str:
    """How the config differs from the run's config.json ("model.refine_width: 32 in the
    run, 16 now; ..."), or "" (the same, or a new run)."""
    path = workdir_files.path(self.workdir, workdir_files.CONFIG)
    if not os.path.exists(path):
      return ""
    with open(path) as f:
      changed = workdir_files.config_differences(json.load(f), self.config)
    return "; ".join(changed[:8]) + ("; ..." if len(changed) > 8 else "")

  def enter_phase(self, train_state: state.TrainState, index: int) -> state.TrainState:
    """`train_state` ready for phase `index` (`state.enter_phase`)."""
    return state.enter_phase(self.phases[index], train_state, self.mesh)

  @functools.cached_property
  def predict_step(self):
    """(variables, batch) -> the system's predictions; compiled once per run."""
    return steps.compile_predict_step(self.module, self.system)

  def scores_final_model(self, index: int) -> bool:
    """Whether phase `index` trains the model the run predicts with (its evaluations can pick
    the best checkpoint); MTCT's shop stage trains the shop branches, not the street ones."""
    return self.module_for(index) is self.module

  @functools.cache  # noqa: B019 (one Run per run; phases are few)
  def predict_step_for(self, index: int):
    """The predictions of the module phase `index` trains (periodic evaluation)."""
    if self.scores_final_model(index):
      return self.predict_step
    return steps.compile_predict_step(self.module_for(index), self.system)

  def close(self) -> None:
    self.checkpointer.close()
    self.writer.close()
