"""The one training loop for every system: phases, evaluation, checkpoints, logging.

The update (`fashion_jax.steps.train_step`) is a pure function `(state, batch) -> (state,
metrics)` compiled once per phase with `jax.jit` over the device mesh, state donated; the
batches come from the system's batch source over the phase's data. A step's randomness is
`fold_in(state.rng, step)` and its batch is a pure function of (seed, step), so a resumed run
retraces an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from fashion_jax import config_check, evaluate, optim, sharding, trained, workdir_lock, writers
from fashion_jax import phases as phases_lib
from fashion_jax import workdir as workdir_files
from fashion_jax.run import Run
from fashion_jax.state import TrainState, variables_of


class NonFiniteLossError(FloatingPointError):
  """Raised when a loss term becomes NaN or inf."""


def check_finite(step: int, metrics: dict[str, float], kept: str) -> None:
  """Stops on a NaN or infinite loss term, naming the step, the terms and what is `kept`
  (`Checkpointer.kept_before_divergence`: and how to restart from before it)."""
  bad = {k: v for k, v in metrics.items() if k.startswith("loss") and not np.isfinite(v)}
  if bad:
    terms = ", ".join(f"{k} = {v}" for k, v in sorted(bad.items()))
    raise NonFiniteLossError(f"non-finite loss at step {step}: {terms}; {kept}.")


def finite_state(state: TrainState) -> bool:
  """Whether every parameter and optimiser value is finite (a state worth checkpointing)."""
  leaves = [x for x in jax.tree.leaves((state.params, state.opt_state, state.batch_stats))
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return bool(jax.device_get(jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))))


class Stopped(Exception):  # noqa: N818 (not an error: a run asked to stop, checkpoint saved)
  """Training stopped by SIGTERM/SIGINT after saving its checkpoint; rerun to resume. The
  command line exits with `exit_status` (128 + the signal, as a shell reports a signal), so a
  scheduler tells it from a finished run (0) and from an error (1)."""

  def __init__(self, signum: int, step: int, evaluating: bool = False):
    super().__init__(
        f"stopped by signal {signum} during the final evaluation; training is complete (its "
        f"checkpoint of step {step} is saved): rerun the same command to evaluate" if evaluating
        else f"stopped by signal {signum} at step {step}, after saving its checkpoint; rerun "
        "the same command to resume")
    self.signum, self.step = signum, step

  @property
  def exit_status(self) -> int:
    return 128 + self.signum


class _StopFlag:
  """Turns SIGTERM/SIGINT into a request to checkpoint and stop; a second SIGINT aborts."""

  def __init__(self):
    self.requested = False
    self.signum = signal.SIGTERM
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.requested, self.signum = True, signum
    logging.warning("signal %d: saving a checkpoint and stopping (Ctrl-C again to abort)", signum)

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _agreed_stop(stop: _StopFlag, step: int, every: int) -> bool:
  """Whether to checkpoint and stop after `step`. One process alone stops at once; several
  agree every `every` steps (all call this at the same steps): a signal to any of them stops
  all after the same step, with its signal's exit status, instead of one waiting forever in
  a collective the other left."""
  if jax.process_count() == 1:
    return stop.requested
  if step % every:
    return False
  signals = multihost_utils.process_allgather(
      np.asarray([int(stop.signum) if stop.requested else 0], np.int32))
  if not signals.any():
    return False
  stop.requested, stop.signum = True, int(signals.max())
  return True


def _stalled(run: Run, index: int, eval_at: set[int], step: int) -> bool:
  """Early stopping: the last phase's last `config.early_stopping_patience` evaluations did not
  improve the best metric. Read from the best checkpoint, so it holds across a resume."""
  patience = run.config.get("early_stopping_patience", 0)
  if not patience or index != len(run.phases) - 1:
    return False
  best = run.checkpointer.best_step()
  since = max(run.phases[index].start_step, -1 if best is None else best)
  return len([s for s in eval_at if since < s <= step]) >= patience


def _early_stop_step(run: Run) -> int | None:
  path = workdir_files.path(run.workdir, workdir_files.EARLY_STOPPED)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)["step"]


def _eval_steps(run: Run, phase: phases_lib.Phase) -> set[int]:
  every = max(1, round(run.config.eval_every_epochs * phase.steps_per_epoch))
  return set(range(phase.start_step + every, phase.end_step, every)) | {phase.end_step}


def _train_phase(run: Run, state: TrainState, index: int,
                 stop: _StopFlag) -> tuple[TrainState, bool]:
  """Trains phase `index` from `state`; also says whether early stopping ended it."""
  phase, config = run.phases[index], run.config
  start = int(state.step)
  step_fn = run.train_step(index, state.params, state.batch_stats)
  batches = run.system.batch_source.batches(
      run.train_data(phase, seed=config.seed + 7919 * index, start_step=start - phase.start_step))
  eval_at = _eval_steps(run, phase)
  progress = writers.Progress(run.total_steps, start, config.batch_size, f"{phase.name}",
                              bool(config.progress), log_every=config.log_every_steps,
                              is_chief=run.is_chief)
  pending, window = None, []

  def settle():  # fetch the last step's metrics: NaN check and logging, one step behind
    nonlocal pending
    if pending is not None:
      done, metrics = pending
      host = {k: float(v) for k, v in jax.device_get(metrics).items()}
      check_finite(done, host, run.checkpointer.kept_before_divergence(done))
      window.append(host)
      progress.update(done, host["loss"])
      if done % config.log_every_steps == 0 or done == phase.end_step:
        mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        mean["learning_rate"] = float(optim.learning_rate_schedule(
            phase.optimizer, phase.steps_per_epoch)(done - phase.start_step))
        run.writer.write(done, "train", mean)
        window.clear()
      pending = None

  try:
    for step in range(start, phase.end_step):
      batch = sharding.put_batch(run.device_fields(next(batches)), run.mesh)
      state, metrics = step_fn(state, batch)
      settle()
      pending = (step + 1, metrics)
      stopping = _agreed_stop(stop, step + 1, config.get("stop_sync_every_steps", 10))
      if stopping or (step + 1) in eval_at or (step + 1) % config.checkpoint_every_steps == 0:
        settle()  # never checkpoint a state whose loss has not been checked
        if not finite_state(state):  # a finite loss can still leave a diverged state
          raise NonFiniteLossError(
              f"the state after step {step + 1} holds NaN or infinite values (its loss was "
              f"finite); it is not saved, {run.checkpointer.kept_before_divergence(step + 1)}.")
        if (step + 1) in eval_at:
          results = evaluate.evaluate_variables(run.eval_data, run.predict_step_for(index),
                                                variables_of(state), desc=f"eval@{step + 1}")
          run.writer.write(step + 1, "eval", results)
          if run.scores_final_model(index):  # else it scored another part of the model
            run.checkpointer.save_best(step + 1, variables_of(state), writers.flatten(results))
        run.checkpointer.save_latest(step + 1, state)
        if (step + 1) in eval_at and _stalled(run, index, eval_at, step + 1):
          logging.warning("early stopping at step %d: %d evaluations without a better %s "
                          "(best at step %s)", step + 1, config.early_stopping_patience,
                          run.checkpointer.best_metric, run.checkpointer.best_step())
          if run.is_chief:
            with open(workdir_files.path(run.workdir, workdir_files.EARLY_STOPPED), "w") as f:
              json.dump({"step": step + 1, "best_step": run.checkpointer.best_step()}, f)
          return state, True
      if stopping:
        logging.warning("stopped at step %d; rerun the same command to resume", step + 1)
        break
    settle()
  finally:
    progress.close()
  return state, False


def train_and_evaluate(config, workdir: str, restart_from: int | None = None) -> dict:
  """Trains every phase of `config` in `workdir` (resuming if it holds checkpoints), then runs
  the final evaluation with baselines. Returns the final results by method; raises `Stopped`
  when a signal stopped training (its checkpoint saved). `restart_from`: resume from that
  step's checkpoint (0: afresh), the later ones moved to set_aside_checkpoints/ first."""
  config_check.check(config)  # before the run reads or writes anything (the lock included)
  config_check.check_pretrained(config)
  with workdir_lock.held(workdir):
    return _train_and_evaluate(config, workdir, restart_from)


def _restart_from(run: Run, step: int) -> None:
  kept = run.checkpointer.latest.all_steps()
  if step != 0 and step not in kept:
    raise ValueError(f"--restart_from={step}: {run.workdir} has no checkpoint of step {step} "
                     f"(it has {sorted(kept) or 'none'}; 0 starts afresh)")
  for target in run.checkpointer.set_aside_after(step):
    logging.warning("--restart_from=%d: %s", step, f"moved to {target}")
  early = workdir_files.path(run.workdir, workdir_files.EARLY_STOPPED)
  if run.is_chief and os.path.exists(early) and (_early_stop_step(run) or 0) > step:
    target = workdir_files.set_aside(run.workdir, workdir_files.EARLY_STOPPED)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.replace(early, target)


def _train_and_evaluate(config, workdir: str, restart_from: int | None) -> dict:
  run = Run(config, workdir)
  try:
    if restart_from is not None:
      _restart_from(run, restart_from)
    state, owner = run.restore_or_init()
    run.record()
    run.writer.supersede_after(int(state.step))  # the steps after it are trained again
    stopped_early = _early_stop_step(run) == int(state.step)
    with _StopFlag() as stop:
      for index in range(phases_lib.phase_at(run.phases, int(state.step)), len(run.phases)):
        if stopped_early:
          break
        if index != owner:
          state, owner = run.enter_phase(state, index), index
        if int(state.step) < run.phases[index].end_step:
          state, stopped_early = _train_phase(run, state, index, stop)
        if _agreed_stop(stop, int(state.step), every=1):  # every process, at the phase's end
          raise Stopped(stop.signum, int(state.step))
    with _stopped_at_once(int(state.step)):
      return _final_evaluation(run, state)
  finally:
    run.close()


@contextlib.contextmanager
def _stopped_at_once(step: int):
  """SIGTERM/SIGINT during the final evaluation stop it at once with `Stopped` (exit 128 +
  the signal, the workdir's lock released): training is complete and saved, and a rerun
  evaluates again. Results files are written whole or not at all."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handle(signum, frame):
    raise Stopped(signum, step, evaluating=True)

  previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
  try:
    yield
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)


def _final_evaluation(run: Run, state: TrainState) -> dict:
  """The final evaluation of the trained model: the best checkpoint, else `state`."""
  model = trained.TrainedModel(run.workdir, config=run.config, spec=run.spec, mesh=run.mesh,
                               latest=(variables_of(state), int(state.step)))
  return evaluate.final_evaluation(run.eval_data, model, run.predict_step, run.init_variables)
