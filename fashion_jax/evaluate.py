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

import jax
import numpy as np
import tqdm
from absl import logging

from fashion_jax import checkpoints, sharding, state, visualize, writers
from fashion_jax import run as run_lib
from fashion_jax import workdir as workdir_files
from fashion_jax.data import pipeline


def _eval_batch_size(run) -> int:
  return run.config.get("eval_batch_size") or run.config.batch_size


def iterate(run, source, desc: str):
  """Yields this process's evaluation batches of `source` with a progress bar."""
  batch_size = _eval_batch_size(run)
  batches = pipeline.eval_batches(source, run.config.data, global_batch=batch_size,
                                  process_index=jax.process_index(),
                                  process_count=jax.process_count())
  total = pipeline.num_eval_batches(len(source), batch_size)
  enabled = run.is_chief and run.config.progress
  yield from tqdm.tqdm(batches, total=total, desc=desc, leave=False, disable=not enabled)


def host_fields(batch: dict) -> dict:
  """Everything of a batch but pixels (arrays of 4 or more dimensions: images, masks)."""
  return {k: v for k, v in batch.items() if np.ndim(v) < 4}


def _concat(chunks: list[dict]) -> dict:
  return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def collect(run, predict, source, desc: str) -> tuple[dict, dict]:
  """Runs `predict(host_batch) -> global predictions` over a split.

  Returns (predictions, ground truth) as global numpy arrays, padding included (see `valid`).
  """
  preds, truth = [], []
  for batch in iterate(run, source, desc):
    preds.append(predict(batch))
    truth.append(sharding.gather(host_fields(batch)))
  return _concat(preds), _concat(truth)


def model_predictor(run, variables, predict_step=None):
  """host batch -> global numpy predictions of the model with `variables` (through
  `predict_step`, default the run's)."""
  variables = sharding.put_replicated(variables, run.mesh)
  predict_step = predict_step or run.predict_step

  def predict(batch):
    return sharding.gather(predict_step(variables, sharding.put_batch(
        run.device_fields(batch), run.mesh)))

  return predict


def evaluate_variables(run, variables, role: str = "eval", desc: str = "eval",
                       phase: int | None = None) -> dict:
  """The system's scores of `variables` on `role`; with `phase`, as the module that phase
  trains predicts (MTCT's shop stage: its shop branches)."""
  predict_step = None if phase is None else run.predict_step_for(phase)
  preds, truth = collect(run, model_predictor(run, variables, predict_step),
                         run.eval_source(role), desc)
  return run.system.score(preds, truth, run.spec)


def mean_predictor(run, max_examples: int):
  """The system's "training mean" baseline, fitted on the first training examples."""
  source = run_lib.first(run.catalog.source(run.config.data, run.selections["train"]),
                         max_examples)
  truth = _concat([sharding.gather(host_fields(b))
                   for b in iterate(run, source, "training statistics")])
  constant = run.system.mean_baseline(truth, run.spec)

  def predict(batch):  # global predictions, as the model's: every process holds an equal slice
    n = len(batch["valid"]) * jax.process_count()
    return {k: np.broadcast_to(v, (n, *np.shape(v))).astype(np.float32)
            for k, v in constant.items()}

  return predict


def final_evaluation(run, variables, step: int, trained: bool = True) -> dict:
  """The best checkpoint (else `variables` of `step`, when `trained`) and the baselines on the
  test role of every evaluator (`Run.evaluators`: the run's data, then each `config.evals`
  entry); prints each one's paper-style table and writes its `results_<name>.json`. Returns the
  run's own results (`results_test.json`) by method."""
  config = run.config
  template = sharding.put_replicated(variables, run.mesh)
  in_memory = (variables, step)  # the latest state, already here
  variables, step, which = run.checkpointer.best_else_latest(
      template, lambda: in_memory if trained else None)
  label = f"{config.system} (step {step}" + (
      ", latest: the best checkpoint does not restore)"
      if which == checkpoints.LATEST_BEST_UNREADABLE else ")")
  baselines = tuple(config.eval.get("baselines", ()))
  unknown = set(baselines) - {"untrained", "training_mean"}
  if unknown:
    raise ValueError(f"unknown eval.baselines {sorted(unknown)}; use untrained, training_mean")
  predictors = {label: model_predictor(run, variables)}  # built once, used by every evaluator
  if "untrained" in baselines:
    predictors["untrained"] = model_predictor(run, run.init_variables())
  if "training_mean" in baselines:
    predictors["training mean"] = mean_predictor(run, config.eval.get("baseline_examples", 2000))
  own = None
  for name, data_cfg in run.evaluators():
    source = run.eval_source("test", data_cfg)
    results = {}
    for method, predict in predictors.items():
      desc = "test" if method == label else method
      results[method] = run.system.score(*collect(run, predict, source, desc), run.spec)
      if method == label and own is None:
        save_picture(run, predict, source, workdir_files.picture(run.workdir, "test"))
    _publish(run, results, name, data_cfg)
    own = own or results
  return own


def save_picture(run, predict, source, path: str) -> None:
  """The system's picture of its predictions on the first test images, if it draws one."""
  batch = next(iterate(run, source, "picture"))
  local = len(batch["valid"])  # process 0's slice leads every global batch
  preds = {k: v[:local] for k, v in predict(batch).items()}
  picture = run.system.picture(batch, preds)
  if picture is not None and run.is_chief:
    visualize.save_png(path, picture)
    logging.info("prediction picture written to %s", path)


def _publish(run, results: dict, name: str = "test", data_cfg=None) -> None:
  """Prints evaluator `name`'s table and writes its `results_<name>.json`."""
  if not run.is_chief:
    return
  data = run.describe("test", data_cfg)
  print(f"\n=== {run.config.system} on {data['dataset']}, test data: {data['records']} ===")
  print(run.system.report(results))
  path = workdir_files.results(run.workdir, name)
  with open(path, "w") as f:
    json.dump({"data": data, "eval_data": run.describe("eval"),
               "methods": {m: {k: writers.jsonable(v) for k, v in writers.flatten(r).items()}
                           for m, r in results.items()}}, f, indent=1)
  logging.info("results written to %s", path)


def evaluate_workdir(workdir: str, config=None) -> dict:
  """Evaluates the best (else latest) checkpoint of an existing run, without training."""
  config = config or workdir_files.load_config(workdir)
  run = run_lib.Run(config, workdir)
  try:
    if run.checkpointer.latest_step() is None and run.checkpointer.best_step() is None:
      raise FileNotFoundError(f"no checkpoint in {workdir}: train first")
    if run.checkpointer.latest_step() is None:  # the best alone (the latest were removed)
      return final_evaluation(run, run.init_variables(), run.checkpointer.best_step(),
                              trained=False)
    train_state, _ = run.restore_or_init()  # the fallback if the best does not restore
    return final_evaluation(run, state.variables_of(train_state), int(train_state.step))
  finally:
    run.close()
