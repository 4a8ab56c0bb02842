"""Orbax checkpoints in the workdir: the latest ones (to resume) and the best one (to use).

`<workdir>/checkpoints/<step>` holds the latest train states (parameters, statistics, optimiser
state, rng, step); `<workdir>/best/<step>` holds only the model variables (`params`,
`batch_stats`) with the best validation metric: it is for evaluation and inference, not resuming.
Saves are asynchronous; `close()` waits for them.
"""

from __future__ import annotations

import math
import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Latest and best train states of one run."""

  def __init__(self, workdir: str, best_metric: str, best_mode: str, keep_latest: int = 2):
    workdir = os.path.abspath(workdir)
    self.best_metric = best_metric
    self.latest = ocp.CheckpointManager(
        os.path.join(workdir, "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep_latest, create=True))
    self.best = ocp.CheckpointManager(
        os.path.join(workdir, "best"),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, best_mode=best_mode,
            best_fn=lambda metrics: metrics[best_metric],
            keep_checkpoints_without_metrics=False))

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def save_latest(self, step: int, state) -> None:
    if step not in self.latest.all_steps():
      self.latest.save(step, args=ocp.args.StandardSave(state))

  def save_best(self, step: int, variables, flat_metrics: dict[str, float]) -> None:
    """Offers `variables` as the best; orbax keeps them only if they beat the kept ones."""
    value = flat_metrics.get(self.best_metric)
    if value is None or not math.isfinite(value):
      return  # a run whose metric is undefined (e.g. nothing counted) has no best yet
    if step not in self.best.all_steps():
      self.best.save(step, args=ocp.args.StandardSave(variables),
                     metrics={self.best_metric: float(value)})

  def best_step(self) -> int | None:
    return self.best.best_step()

  def restore(self, template, step: int | None = None):
    """The latest (or `step`) train state, in the structure and shardings of `template`."""
    return self._restore(self.latest, self.latest.latest_step() if step is None else step,
                         template)

  def restore_best(self, template):
    """The best model variables, in the structure and shardings of `template`."""
    return self._restore(self.best, self.best.best_step(), template)

  @staticmethod
  def _restore(manager, step, template):
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {manager.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self.latest.wait_until_finished()
    self.best.wait_until_finished()
    self.latest.close()
    self.best.close()
