"""Orbax checkpoints in the workdir: the latest ones (to resume) and the best one (to use).

`<workdir>/checkpoints/<step>` holds the latest train states (parameters, statistics, optimiser
state, rng, step); `<workdir>/best/<step>` holds only the model variables (`params`,
`batch_stats`) with the best validation metric: it is for evaluation and inference, not resuming.

Saves are synchronous: a save that fails (full disk, unwritable or removed folder) raises
`CheckpointError` at once, in the training loop, instead of failing in a background thread that
then keeps the process from exiting; it costs the write time of a checkpoint every
`checkpoint_every_steps`. A latest checkpoint that does not restore (truncated, empty metadata)
is moved to `<workdir>/unreadable_checkpoints/<step>` with the reason, and the run resumes from
the newest one that does; if none does, nothing is moved and the run stops.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from fashion_jax import workdir as workdir_files

BEST, LATEST, LATEST_BEST_UNREADABLE = "best", "latest", "latest (the best does not restore)"


class CheckpointError(RuntimeError):
  """A checkpoint could not be saved or restored; the message says what is kept."""


def short_reason(e: Exception, limit: int = 300) -> str:
  """"Kind: message" of an orbax or tensorstore error in one line: their messages go on with
  pages of the store's spec ("See full TensorStore details: ...")."""
  text = str(e).split("See full TensorStore details")[0].strip().splitlines()
  text = text[0] if text else ""
  name = "" if isinstance(e, CheckpointError) else f"{type(e).__name__}: "
  return name + (text if len(text) <= limit else text[:limit] + "...")


class Checkpointer:
  """Latest and best train states of one run."""

  def __init__(self, workdir: str, best_metric: str, best_mode: str, keep_latest: int = 2):
    self.workdir = os.path.abspath(workdir)
    self.best_metric = best_metric
    # The item's handler is named, so that an item's metadata (shapes, dtypes) can be read
    # without its arrays, also of a step folder whose own metadata is missing.
    self.latest = ocp.CheckpointManager(
        workdir_files.path(self.workdir, workdir_files.CHECKPOINTS),
        item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep_latest, create=True,
                                             enable_async_checkpointing=False))
    self.best = ocp.CheckpointManager(
        workdir_files.path(self.workdir, workdir_files.BEST),
        item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, best_mode=best_mode, enable_async_checkpointing=False,
            best_fn=lambda metrics: metrics[best_metric],
            keep_checkpoints_without_metrics=False))

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def kept(self) -> str:
    """What a failure leaves to resume from, for its message."""
    step = self.latest_step()
    return (f"the checkpoint of step {step} is kept" if step is not None
            else "no checkpoint was saved before it")

  def kept_before_divergence(self, failed_step: int) -> str:
    """What a non-finite loss at `failed_step` leaves, and how to start from before it: the
    last checkpoint may already hold parameters on their way to infinity."""
    step = self.latest_step()
    if step is None:
      return ("no checkpoint was saved before it. Lower the learning rate (or inspect the "
              "data) and rerun")
    earlier = [s for s in self.latest.all_steps() if s < step]
    return (f"the checkpoint of step {step} is kept, written {failed_step - step} step(s) "
            "before; its parameters are finite but may already be diverging, so resuming "
            "from it can fail the same way. Lower the learning rate (or inspect the data) and "
            "rerun with --restart_from=0 to start afresh"
            + (f" or --restart_from={max(earlier)} to resume from that earlier checkpoint"
               if earlier else "")
            + " (later checkpoints are moved to "
            f"{workdir_files.SET_ASIDE}/, not deleted)")

  def set_aside_after(self, step: int) -> list[str]:
    """Moves every checkpoint (latest and best) of a step after `step` to
    `<workdir>/set_aside_checkpoints/`, so the run restarts from `step` (0: afresh); returns
    where each went. Nothing is deleted."""
    moved = []
    for manager, prefix in ((self.latest, ""), (self.best, "best_")):
      for later in sorted(s for s in manager.all_steps() if s > step):
        target = workdir_files.set_aside(self.workdir, f"{prefix}{later}")
        suffix = 1
        while os.path.exists(target):
          target, suffix = workdir_files.set_aside(self.workdir,
                                                   f"{prefix}{later}.{suffix}"), suffix + 1
        if jax.process_index() == 0:
          os.makedirs(os.path.dirname(target), exist_ok=True)
          shutil.move(os.path.join(str(manager.directory), str(later)), target)
        moved.append(target)
      if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"set aside checkpoints after {step}")
      manager.reload()
    return moved

  def save_latest(self, step: int, state) -> None:
    if step not in self.latest.all_steps():
      self._save(self.latest, step, state)

  def save_best(self, step: int, variables, flat_metrics: dict[str, float]) -> None:
    """Offers `variables` as the best; orbax keeps them only if they beat the kept ones."""
    value = flat_metrics.get(self.best_metric)
    if value is None or not math.isfinite(value):
      return  # a run whose metric is undefined (e.g. nothing counted) has no best yet
    if step not in self.best.all_steps():
      self._save(self.best, step, variables, {self.best_metric: float(value)})

  def _save(self, manager, step: int, item, metrics=None) -> None:
    if not os.path.isdir(self.workdir):
      raise CheckpointError(f"the workdir {self.workdir} was removed during the run: the "
                            f"checkpoint of step {step} cannot be saved, and the run stops")
    try:
      manager.save(step, args=ocp.args.StandardSave(item), metrics=metrics)
    except Exception as e:  # full disk, unwritable folder, ...: orbax raises several kinds
      raise CheckpointError(
          f"could not save the checkpoint of step {step} in {manager.directory}: "
          f"{short_reason(e)}; {self.kept()}. Free space or fix the folder, then rerun "
          "the same command to resume.") from e

  def best_step(self) -> int | None:
    return self.best.best_step()

  def restore(self, template, step: int | None = None):
    """The latest (or `step`) train state, in the structure and shardings of `template`."""
    return self._restore(self.latest, self.latest.latest_step() if step is None else step,
                         template)

  def restore_newest(self, template_for: Callable[[int], object], config_changes: str = ""):
    """(state, step) of the newest latest checkpoint that restores, or (None, None) when there
    is none. `template_for(step)` gives the structure of the state saved at `step`.

    Checkpoints newer than the one restored did not restore into the same structure an older
    one did, so they are damaged: each is moved to `unreadable_checkpoints/` with its reason.
    When none restores (damage, or a config that no longer matches the run), nothing is moved;
    `config_changes` (how the config differs from the run's config.json) joins the message.
    """
    failures = []
    for step in sorted(self.latest.all_steps(), reverse=True):
      try:
        restored = self.restore(template_for(step), step)
      except Exception as e:  # orbax raises several kinds for damaged files
        logging.warning("the checkpoint of step %d does not restore: %s", step, short_reason(e))
        failures.append((step, short_reason(e)))
        continue
      for bad, reason in failures:
        self._set_aside(bad, reason, restored_step=step)
      return restored, step
    if failures:
      first_step, first = failures[0]
      same = lambda s, r: r.replace(f"step {s} ", "") == first.replace(f"step {first_step} ", "")
      listed = "; ".join(f"step {s}: " + ("the same" if i and same(s, r) else r[:400])
                         for i, (s, r) in enumerate(failures))
      raise CheckpointError(
          f"no checkpoint in {self.latest.directory} restores ({listed}). "
          + (f"The config differs from the run's config.json: {config_changes}. Use the run's "
             "config to resume it, or another --workdir to start afresh. " if config_changes
             else "If the config differs from the run's (its config.json), use that config; "
             "or move the checkpoints away to start afresh. ")
          + "Nothing was changed in the workdir.")
    return None, None

  def _set_aside(self, step: int, reason: str, restored_step: int) -> None:
    target = workdir_files.unreadable(self.workdir, str(step))
    if jax.process_index() == 0:  # one process moves the shared folder, every one reloads
      suffix = 1
      while os.path.exists(target):  # set aside before (the same step failed again): keep both
        target, suffix = workdir_files.unreadable(self.workdir, f"{step}.{suffix}"), suffix + 1
      os.makedirs(os.path.dirname(target), exist_ok=True)
      shutil.move(os.path.join(str(self.latest.directory), str(step)), target)
      with open(os.path.join(target, "REASON.txt"), "w") as f:
        f.write(reason + "\n")
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"set aside checkpoint {step}")
    self.latest.reload()
    logging.warning("the checkpoint of step %d did not restore (%s); it was moved to %s and "
                    "the run resumes from step %d", step, reason[:300], target, restored_step)

  def best_else_latest(self, template, latest: Callable[[], tuple[object, int] | None]
                       ) -> tuple[object, int, str]:
    """The one rule for the variables a trained run is judged and used by: the best
    checkpoint's, else the latest state's. `latest()` gives (variables, step) of the latest
    state, or None when there is none (read from disk or already in memory, the caller's
    choice). Returns (variables, step, which), `which` one of `BEST`, `LATEST` and
    `LATEST_BEST_UNREADABLE` (a best checkpoint exists but does not restore)."""
    best_step = self.best_step()
    if best_step is not None:
      try:
        return self.restore_best(template), best_step, BEST
      except CheckpointError as e:
        fallback = latest()
        if fallback is None:
          raise
        logging.warning("%s; using the latest state (step %d) instead", e, fallback[1])
        return (*fallback, LATEST_BEST_UNREADABLE)
    fallback = latest()
    if fallback is None:
      raise FileNotFoundError(f"no checkpoint in {self.workdir}: train first (or give the "
                              "workdir of a run that saved one)")
    return (*fallback, LATEST)

  def restore_best(self, template):
    """The best model variables, in the structure and shardings of `template`."""
    step = self.best.best_step()
    try:
      return self._restore(self.best, step, template)
    except FileNotFoundError:
      raise
    except Exception as e:
      raise CheckpointError(f"the best checkpoint (step {step}) in {self.best.directory} does "
                            f"not restore: {short_reason(e)}") from e

  @staticmethod
  def _restore(manager, step, template):
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {manager.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    check_matches(manager, step, abstract)  # before any array is read
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    for manager in (self.latest, self.best):
      try:
        manager.wait_until_finished()
        manager.close()
      except Exception as e:  # noqa: BLE001 (closing must not hide the error that ended the run)
        logging.warning("closing %s: %s: %s", manager.directory, type(e).__name__, e)


def _leaf_name(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _shapes(tree) -> dict[str, tuple]:
  """{'params/stage1/kernel': (shape, dtype name)} of a tree of arrays or array metadata."""
  return {_leaf_name(path): (tuple(leaf.shape), str(np.dtype(leaf.dtype)))
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def check_matches(manager, step: int, abstract) -> None:
  """Compares the stored tree of `step` (names, shapes, dtypes: its metadata only) with the
  tree it would be restored into; raises `CheckpointError` naming the first differences. An
  empty or half-written step folder (no metadata) is refused the same way. Reading arrays of
  another shape is what made orbax print pages of tracebacks after the error."""
  try:
    stored = _shapes(manager.item_metadata(step))
  except Exception as e:  # noqa: BLE001 - orbax raises several kinds for missing files
    raise CheckpointError(f"step {step} has no readable metadata (an empty or half-written "
                          f"folder): {short_reason(e)}") from None
  if not stored:
    raise CheckpointError(f"step {step} has no readable metadata (an empty or half-written "
                          "folder)")
  wanted = _shapes(abstract)
  params_first = lambda keys: sorted(keys, key=lambda k: (not k.startswith("params/"), k))
  differences = [f"{k} missing" for k in params_first(wanted.keys() - stored.keys())]
  differences += [f"{k} not in this config's model" for k in params_first(stored.keys() - wanted)]
  differences += [f"{k}: {stored[k][0]} {stored[k][1]} stored, {wanted[k][0]} {wanted[k][1]} "
                  "now" for k in params_first(stored.keys() & wanted.keys())
                  if stored[k] != wanted[k]]
  if differences:
    more = f" and {len(differences) - 3} more" if len(differences) > 3 else ""
    raise CheckpointError(f"step {step} holds another model or optimiser state than this "
                          f"config builds ({'; '.join(differences[:3])}{more})")
