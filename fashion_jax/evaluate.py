"""Evaluation: model outputs over a whole split -> metric dicts -> paper-style tables and JSON.

Predictions are computed on device by the system's `predict` inside one compiled step, gathered
to the host with the ground truth (every example exactly once, padding masked by `valid`), and
scored by the system's pure numpy `score`. Baselines go through the same scoring: the untrained
model (same initialisation as the run) and the system's "training mean" predictor fitted on
training examples. The evaluator knows no field names: what is scored, drawn and averaged is
the system's business.
"""

from __future__ import annotations

import json
import os
import re

import jax
import numpy as np
import tqdm
from absl import logging

from fashion_jax import checkpoints, sharding, steps, systems, trained, visualize, writers
from fashion_jax import workdir as workdir_files
from fashion_jax.data import catalog as catalog_lib
from fashion_jax.data import pipeline
from fashion_jax.eval_data import EvalData


def iterate(data: EvalData, source, desc: str):
  """Yields this process's evaluation batches of `source` with a progress bar."""
  batches = pipeline.eval_batches(source, data.config.data, global_batch=data.batch_size,
                                  process_index=jax.process_index(),
                                  process_count=jax.process_count())
  total = pipeline.num_eval_batches(len(source), data.batch_size)
  yield from tqdm.tqdm(batches, total=total, desc=desc, leave=False, disable=not data.progress)


def host_fields(batch: dict) -> dict:
  """Everything of a batch but pixels (arrays of 4 or more dimensions: images, masks)."""
  return {k: v for k, v in batch.items() if np.ndim(v) < 4}


def _concat(chunks: list[dict]) -> dict:
  return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def collect(data: EvalData, predict, source, desc: str) -> tuple[dict, dict]:
  """Runs `predict(host_batch) -> global predictions` over a split.

  Returns (predictions, ground truth) as global numpy arrays, padding included (see `valid`).
  """
  preds, truth = [], []
  for batch in iterate(data, source, desc):
    preds.append(predict(batch))
    truth.append(sharding.gather(host_fields(batch)))
  return _concat(preds), _concat(truth)


def model_predictor(data: EvalData, predict_step, variables):
  """host batch -> global numpy predictions of `predict_step(variables, batch)` (a compiled
  `steps.compile_predict_step`)."""
  variables = sharding.put_replicated(variables, data.mesh)

  def predict(batch):
    return sharding.gather(predict_step(variables, sharding.put_batch(
        data.device_fields(batch), data.mesh)))

  return predict


def evaluate_variables(data: EvalData, predict_step, variables, role: str = "eval",
                       desc: str = "eval") -> dict:
  """The system's scores of `variables` (predicting through `predict_step`) on `role`."""
  preds, truth = collect(data, model_predictor(data, predict_step, variables),
                         data.source(role), desc)
  return data.system.score(preds, truth, data.spec)


def mean_predictor(data: EvalData, max_examples: int):
  """The system's "training mean" baseline, fitted on the first training examples."""
  truth = _concat([sharding.gather(host_fields(b)) for b in iterate(
      data, data.training_examples(max_examples), "training statistics")])
  constant = data.system.mean_baseline(truth, data.spec)

  def predict(batch):  # global predictions, as the model's: every process holds an equal slice
    n = len(batch["valid"]) * jax.process_count()
    return {k: np.broadcast_to(v, (n, *np.shape(v))).astype(np.float32)
            for k, v in constant.items()}

  return predict


def model_label(system_name: str, model: trained.TrainedModel) -> str:
  """The model's row in the tables: "fpm (step 120)", and why when not the best checkpoint."""
  return f"{system_name} (step {model.step}" + (
      ", latest: the best checkpoint does not restore)"
      if model.which == checkpoints.LATEST_BEST_UNREADABLE else ")")


def final_evaluation(data: EvalData, model: trained.TrainedModel, predict_step,
                     init_variables=None, results_suffix: str = "") -> dict:
  """`model` (a run's best checkpoint, else its latest state) and the baselines on the test
  role of every evaluator (`EvalData.evaluators`: the run's data, then each `config.evals`
  entry); prints each one's paper-style table and writes its `results_<name><suffix>.json`.
  `init_variables()`: the run's initial variables, for the "untrained" baseline. Returns the
  run's own results (`results_test.json`) by method."""
  config = data.config
  label = model_label(config.system, model)
  baselines = tuple(config.eval.get("baselines", ()))
  unknown = set(baselines) - {"untrained", "training_mean"}
  if unknown:
    raise ValueError(f"unknown eval.baselines {sorted(unknown)}; use untrained, training_mean")
  # Built once, used by every evaluator.
  predictors = {label: model_predictor(data, predict_step, model.variables)}
  if "untrained" in baselines:
    predictors["untrained"] = model_predictor(data, predict_step, init_variables())
  if "training_mean" in baselines:
    predictors["training mean"] = mean_predictor(data, config.eval.get("baseline_examples", 2000))
  own = None
  for name, data_cfg in data.evaluators():
    source = data.source("test", data_cfg)
    results = {}
    for method, predict in predictors.items():
      desc = "test" if method == label else method
      results[method] = data.system.score(*collect(data, predict, source, desc), data.spec)
      if method == label and own is None:
        save_picture(data, predict, source,
                     workdir_files.picture(data.workdir, "test" + results_suffix))
    _publish(data, results, name + results_suffix, data_cfg)
    own = own or results
  return own


def save_picture(data: EvalData, predict, source, path: str) -> None:
  """The system's picture of its predictions on the first test images, if it draws one."""
  batch = next(iterate(data, source, "picture"))
  local = len(batch["valid"])  # process 0's slice leads every global batch
  preds = {k: v[:local] for k, v in predict(batch).items()}
  picture = data.system.picture(batch, preds)
  if picture is not None and data.is_chief:
    visualize.save_png(path, picture)
    logging.info("prediction picture written to %s", path)


def _publish(data: EvalData, results: dict, name: str = "test", data_cfg=None) -> None:
  """Prints evaluator `name`'s table and writes its `results_<name>.json`."""
  if not data.is_chief:
    return
  described = data.describe("test", data_cfg)
  print(f"\n=== {data.config.system} on {described['dataset']}, test data: "
        f"{described['records']} ===")
  print(data.system.report(results))
  path = workdir_files.results(data.workdir, name)
  text = json.dumps({"data": described, "eval_data": data.describe("eval"),
                     "methods": {m: {k: writers.jsonable(v) for k, v in writers.flatten(r).items()}
                                 for m, r in results.items()}}, indent=1)
  kept = workdir_files.keep_earlier(path, text)
  if kept:
    logging.info("the earlier %s, with other numbers, is kept as %s", path, kept)
  with open(path + ".tmp", "w") as f:  # whole or not at all, even if stopped while writing
    f.write(text)
  os.replace(path + ".tmp", path)
  logging.info("results written to %s", path)


def eval_mode_config(workdir: str, config=None, overrides: dict | None = None):
  """(config, results suffix) of `--mode=eval`: the run's config.json with `overrides` of
  `config_check.EVAL_MODE_FIELDS` (or `config`, a whole config file, whose model must be the
  run's); the suffix names the results after the overrides that change what is evaluated."""
  from fashion_jax import cli, config_check

  stored = workdir_files.load_config(workdir)
  if config is not None:
    changed = workdir_files.config_differences(stored.to_dict(), config, prefix="model.")
    if changed:
      raise ValueError(f"--config gives another model than the run in {workdir} trained "
                       f"({'; '.join(changed[:8])}): evaluate with the run's own config (leave "
                       "--config out; --config.F=V overrides the evaluated data)")
    return config, ""
  overrides = dict(overrides or {})
  refused = sorted(k for k in overrides if k not in config_check.EVAL_MODE_FIELDS)
  if refused:
    raise cli.CommandLineError(
        f"--config.{refused[0]}: --mode=eval evaluates the run's model as trained; it may "
        f"override only {', '.join(config_check.EVAL_MODE_FIELDS)}")
  cli.apply_overrides(stored, overrides, "--config override")
  shown = lambda v: "+".join(map(str, v)) if isinstance(v, tuple | list) else str(v)
  naming = [f"{k}={shown(overrides[k])}" for k in sorted(overrides)
            if k in config_check.EVAL_MODE_NAMING]
  suffix = "@" + re.sub(r"[^A-Za-z0-9._=,+-]+", "_", ",".join(naming)) if naming else ""
  return stored, suffix


def evaluate_workdir(workdir: str, config=None, overrides: dict | None = None) -> dict:
  """Evaluates the best (else latest) checkpoint of an existing run, without training: the
  model is the workdir's (`trained.TrainedModel`), the data its config's with `overrides`
  (`eval_mode_config`); results go to results_test<@overrides>.json."""
  from fashion_jax import config_check, workdir_lock

  config, suffix = eval_mode_config(workdir, config, overrides)
  config_check.check(config)
  with workdir_lock.held(workdir):
    return _evaluate_workdir(workdir, config, suffix)


def _evaluate_workdir(workdir: str, config, suffix: str) -> dict:
  from fashion_jax import state

  catalog = catalog_lib.Catalog(progress=bool(config.progress))
  dataset = catalog.open(config.data)
  data = EvalData(config, systems.get_system(config.system), catalog, dataset.name,
                  workdir_files.load_dataset_spec(workdir), sharding.make_mesh(
                      config.get("num_devices", 0)), workdir)
  model = trained.TrainedModel(workdir, config=config, spec=data.spec, mesh=data.mesh)
  blank = data.system.batch_source.blank_example(config.data, data.spec)

  def init_variables():
    return state.load_pretrained(state.init_variables(
        model.module, data.system.batch_fields, blank, config.seed), config.model)

  return final_evaluation(data, model, steps.compile_predict_step(model.module, data.system),
                          init_variables, results_suffix=suffix)
