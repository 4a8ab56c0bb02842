"""Evaluation: model outputs over a whole split -> metric dicts -> paper-style tables and JSON.

Predictions are computed on device by the system's `predict` inside one compiled step, gathered
to the host with the ground truth (every example exactly once, padding masked by `valid`), and
scored by the system's pure numpy `score`. Baselines go through the same scoring: an untrained
model (same initialisation as the run) and the "training mean" predictor (mean training keypoint
and landmark positions in the network-input frame, training label frequencies as scores).
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import tqdm
from absl import logging

from fashion_jax import run as run_lib
from fashion_jax import sharding, visualize, writers
from fashion_jax.data import pipeline, schema

_HOST_SKIP = ("image", "mask")  # pixels are not needed to score; keep host memory small


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


def _concat(chunks: list[dict]) -> dict:
  return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def collect(run, predict, source, desc: str) -> tuple[dict, dict]:
  """Runs `predict(host_batch) -> global predictions` over a split.

  Returns (predictions, ground truth) as global numpy arrays, padding included (see `valid`).
  """
  preds, truth = [], []
  for batch in iterate(run, source, desc):
    preds.append(predict(batch))
    truth.append(sharding.gather({k: v for k, v in batch.items() if k not in _HOST_SKIP}))
  return _concat(preds), _concat(truth)


def model_predictor(run, variables):
  """host batch -> global numpy predictions of the model with `variables`."""
  variables = sharding.put_replicated(variables, run.mesh)

  def predict(batch):
    return sharding.gather(run.predict_step(variables, sharding.put_batch(
        run.device_fields(batch), run.mesh)))

  return predict


def state_variables(state) -> dict:
  """The model variables of a train state (as `module.init` returns them: no empty
  collections)."""
  variables = {"params": state.params}
  if state.batch_stats:
    variables["batch_stats"] = state.batch_stats
  return variables


def evaluate_variables(run, variables, split: str | None = None, desc: str = "eval") -> dict:
  preds, truth = collect(run, model_predictor(run, variables), run.eval_source(split), desc)
  return run.system.score(preds, truth, run.spec)


def evaluate_state(run, state, desc: str = "eval") -> dict:
  return evaluate_variables(run, state_variables(state), desc=desc)


def training_statistics(run, max_examples: int) -> dict:
  """Mean located keypoint/landmark positions (network-input frame) and label frequencies."""
  source = run_lib.Subset(run.sources[run.config.data.train_split], max_examples)
  chunks = [sharding.gather({k: b[k] for k in ("keypoints", "keypoints_visibility", "landmarks",
                                                "landmarks_visibility", "category", "attributes",
                                                "valid")})
            for b in iterate(run, source, "training statistics")]
  data = _concat(chunks)
  valid = data["valid"]
  stats = {}
  for name in ("keypoints", "landmarks"):
    located = (data[f"{name}_visibility"] != schema.ABSENT) & valid[:, None]
    total = (data[name] * located[..., None]).sum(0)
    stats[name] = total / np.maximum(located.sum(0), 1)[:, None]
  categories = data["category"][valid & (data["category"] >= 0)]
  stats["category_scores"] = np.bincount(categories, minlength=max(run.spec.num_categories, 1))
  attrs = data["attributes"][valid].astype(np.float64)
  known = attrs >= 0
  stats["attribute_scores"] = (attrs * known).sum(0) / np.maximum(known.sum(0), 1)
  return stats


def mean_predictor(stats: dict):
  """The "training mean" baseline: the same prediction for every image."""

  def predict(batch):
    n = len(batch["valid"])
    return {k: np.broadcast_to(v, (n, *np.shape(v))).astype(np.float32)
            for k, v in stats.items()}

  return predict


def final_evaluation(run, variables, step: int) -> dict:
  """The best checkpoint (else `variables` of `step`) and the baselines on the test split;
  prints the paper-style table and writes `results_<split>.json`."""
  config = run.config
  split = config.data.get("test_split") or config.data.eval_split
  source = run.eval_source(split)
  best = run.checkpointer.best_step()
  if best is not None:
    template = sharding.put_replicated(variables, run.mesh)
    variables, step = run.checkpointer.restore_best(template), best
  label = f"{config.system} (step {step})"
  predict = model_predictor(run, variables)
  results = {label: run.system.score(*collect(run, predict, source, "test"), run.spec)}
  save_prediction_picture(run, predict, source,
                          os.path.join(run.workdir, f"predictions_{split}.png"))
  baselines = tuple(config.eval.get("baselines", ()))
  if "untrained" in baselines:
    results["untrained"] = run.system.score(
        *collect(run, model_predictor(run, run.init_variables()), source, "untrained"), run.spec)
  if "training_mean" in baselines:
    stats = training_statistics(run, config.eval.get("baseline_examples", 2000))
    results["training mean"] = run.system.score(
        *collect(run, mean_predictor(stats), source, "training mean"), run.spec)
  _publish(run, split, results)
  return results


def save_prediction_picture(run, predict, source, path: str) -> None:
  """Ground truth vs predictions on the first test images (systems that predict points)."""
  batch = next(iterate(run, source, "picture"))
  local = len(batch["valid"])  # process 0's slice leads every global batch
  preds = {k: v[:local] for k, v in predict(batch).items()}
  picture = visualize.prediction_grid(batch, preds)
  if picture is not None and run.is_chief:
    visualize.save_png(path, picture)
    logging.info("prediction picture written to %s", path)


def _publish(run, split: str, results: dict) -> None:
  if not run.is_chief:
    return
  print(f"\n=== {run.config.system} on {run.builder.name}:{split} ===")
  print(run.system.report(results))
  path = os.path.join(run.workdir, f"results_{split}.json")
  with open(path, "w") as f:
    json.dump({m: {k: writers._jsonable(v) for k, v in writers.flatten(r).items()}
               for m, r in results.items()}, f, indent=1)
  logging.info("results written to %s", path)


def evaluate_workdir(workdir: str, config=None) -> dict:
  """Evaluates the best (else latest) checkpoint of an existing run, without training."""
  from fashion_jax import train  # deferred: train imports this module

  config = config or run_lib.load_config(workdir)
  run = run_lib.Run(config, workdir)
  try:
    if run.checkpointer.latest_step() is None and run.checkpointer.best_step() is None:
      raise FileNotFoundError(f"no checkpoint in {workdir}: train first")
    if run.checkpointer.best_step() is not None:
      return final_evaluation(run, run.init_variables(), run.checkpointer.best_step())
    state, _ = train.restore_or_init(run)
    return final_evaluation(run, state_variables(state), int(state.step))
  finally:
    run.close()
