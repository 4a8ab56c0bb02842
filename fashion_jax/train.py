"""The one training loop for every system: phases, evaluation, checkpoints, logging.

The update is a pure function `(state, batch) -> (state, metrics)` compiled once per phase with
`jax.jit` over the device mesh, state donated. A step's randomness is `fold_in(state.rng, step)`
and its batch is a pure function of (seed, step), so a resumed run retraces an uninterrupted one.
"""

from __future__ import annotations

import functools
import signal
import threading
from typing import Any

import jax
import numpy as np
import optax
from absl import logging
from flax.training import train_state

from fashion_jax import evaluate, optim, sharding, writers
from fashion_jax.data import pipeline
from fashion_jax.run import Run


class TrainState(train_state.TrainState):
  batch_stats: Any = None
  rng: jax.Array = None


class NonFiniteLossError(FloatingPointError):
  """Raised when a loss term becomes NaN or inf."""


def create_state(run: Run, variables: dict, tx: optax.GradientTransformation) -> TrainState:
  return TrainState.create(apply_fn=run.module.apply, params=variables["params"], tx=tx,
                           batch_stats=variables.get("batch_stats", {}),
                           rng=jax.random.fold_in(jax.random.PRNGKey(run.config.seed), 1))


def train_step(state: TrainState, batch: dict, *, run: Run, loss_cfg) -> tuple[TrainState, dict]:
  """One update. Pure: everything random comes from `state.rng` and `state.step`."""
  rng = jax.random.fold_in(state.rng, state.step)

  def loss_fn(params):
    outputs, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, batch, train=True,
        rngs={"dropout": rng}, mutable=["batch_stats"])
    total, terms = run.system.loss(outputs, batch, loss_cfg)
    return total, (terms, updates)

  (total, (terms, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=grads,
                                batch_stats=updates.get("batch_stats", state.batch_stats))
  metrics = {"loss": total, "grad_norm": optax.global_norm(grads),
             **{f"loss/{k}": v for k, v in terms.items()}}
  return state, metrics


def check_finite(step: int, metrics: dict[str, float]) -> None:
  bad = {k: v for k, v in metrics.items() if k.startswith("loss") and not np.isfinite(v)}
  if bad:
    terms = ", ".join(f"{k} = {v}" for k, v in sorted(bad.items()))
    raise NonFiniteLossError(f"non-finite loss at step {step}: {terms}. The last checkpoint "
                             "before it is kept; lower the learning rate or inspect the data.")


class _StopFlag:
  """Turns SIGTERM/SIGINT into a request to checkpoint and stop; a second SIGINT aborts."""

  def __init__(self):
    self.requested = False
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.requested = True
    logging.warning("signal %d: saving a checkpoint and stopping (Ctrl-C again to abort)", signum)

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def restore_or_init(run: Run):
  """(state, index of the phase the state's optimiser belongs to)."""
  variables = run.init_variables()
  step = run.checkpointer.latest_step()
  if step is None:
    tx = optim.make_optimizer(run.phases[0], variables["params"], run.steps_per_epoch)
    return sharding.put_replicated(create_state(run, variables, tx), run.mesh), 0
  owner = optim.phase_at(run.phases, max(step - 1, 0))
  tx = optim.make_optimizer(run.phases[owner], variables["params"], run.steps_per_epoch)
  template = sharding.put_replicated(create_state(run, variables, tx), run.mesh)
  logging.info("resuming from step %d (phase %s)", step, run.phases[owner].name)
  return run.checkpointer.restore(template, step), owner


def _enter_phase(run: Run, state: TrainState, index: int) -> TrainState:
  """Keeps parameters, statistics, rng and step; starts the phase's optimiser afresh."""
  tx = optim.make_optimizer(run.phases[index], state.params, run.steps_per_epoch)
  return state.replace(tx=tx, opt_state=sharding.put_replicated(tx.init(state.params), run.mesh))


def _eval_steps(run: Run, phase: optim.Phase) -> set[int]:
  every = max(1, round(run.config.eval_every_epochs * run.steps_per_epoch))
  return set(range(phase.start_step + every, phase.end_step, every)) | {phase.end_step}


def _train_phase(run: Run, state: TrainState, index: int, stop: _StopFlag) -> TrainState:
  phase, config = run.phases[index], run.config
  start = int(state.step)
  step_fn = jax.jit(functools.partial(train_step, run=run, loss_cfg=phase.loss),
                    donate_argnums=0)
  batches = pipeline.train_batches(
      run.train_source(phase), phase.data, global_batch=config.batch_size,
      seed=config.seed + 7919 * index, start_step=start - phase.start_step,
      process_index=jax.process_index(), process_count=jax.process_count())
  eval_at = _eval_steps(run, phase)
  progress = writers.Progress(run.total_steps, start, config.batch_size,
                              f"{phase.name}", run.is_chief and config.progress)
  pending, window = None, []

  def settle():  # fetch the last step's metrics: NaN check and logging, one step behind
    nonlocal pending
    if pending is not None:
      done, metrics = pending
      host = {k: float(v) for k, v in jax.device_get(metrics).items()}
      check_finite(done, host)
      window.append(host)
      progress.update(done, host["loss"])
      if done % config.log_every_steps == 0 or done == phase.end_step:
        mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        mean["learning_rate"] = float(optim.learning_rate_schedule(
            phase.optimizer, run.steps_per_epoch)(done - phase.start_step))
        run.writer.write(done, "train", mean)
        window.clear()
      pending = None

  try:
    for step in range(start, phase.end_step):
      batch = sharding.put_batch(run.device_fields(next(batches)), run.mesh)
      state, metrics = step_fn(state, batch)
      settle()
      pending = (step + 1, metrics)
      if stop.requested or (step + 1) in eval_at or (step + 1) % config.checkpoint_every_steps == 0:
        settle()  # never checkpoint a state whose loss has not been checked
        if (step + 1) in eval_at:
          results = evaluate.evaluate_state(run, state, desc=f"eval@{step + 1}")
          run.writer.write(step + 1, "eval", results)
          run.checkpointer.save_best(step + 1, evaluate.state_variables(state),
                                     writers.flatten(results))
        run.checkpointer.save_latest(step + 1, state)
      if stop.requested:
        logging.warning("stopped at step %d; rerun the same command to resume", step + 1)
        break
    settle()
  finally:
    progress.close()
  return state


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains every phase of `config` in `workdir` (resuming if it holds checkpoints), then runs
  the final evaluation with baselines. Returns the final results by method."""
  run = Run(config, workdir)
  try:
    state, owner = restore_or_init(run)
    with _StopFlag() as stop:
      for index in range(optim.phase_at(run.phases, int(state.step)), len(run.phases)):
        if index != owner:
          state, owner = _enter_phase(run, state, index), index
        if int(state.step) < run.phases[index].end_step:
          state = _train_phase(run, state, index, stop)
        if stop.requested:
          return {}
    return evaluate.final_evaluation(run, evaluate.state_variables(state), int(state.step))
  finally:
    run.close()
