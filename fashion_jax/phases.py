"""Training phases: data in the config (`config.phases`), resolved to step ranges.

A phase is a name, a length, which parameters train, and overrides for the optimiser, the loss,
the data and the model (switches that keep its parameters). An override of a field the config
does not have is refused. Paper-specific schedules (pre-train one stream, then train jointly;
shop then street) are phase lists, not forks of the trainer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import ml_collections

PHASE_KEYS = ("name", "num_epochs", "num_steps", "trainable", "optimizer", "loss", "data",
              "model", "copy")
# Evaluation and the hold-out are the run's, not a phase's: a phase that overrides them is
# refused rather than silently evaluated on the run's data.
RUN_LEVEL_DATA = ("eval_split", "test_split", "eval_domain", "eval_max_examples", "holdout",
                  "num_folds", "fold")


@dataclasses.dataclass(frozen=True)
class Phase:
  """One training phase, resolved: absolute steps and the full configs it trains with.

  `model` differs from `config.model` only where the phase switches training-time behaviour
  (e.g. which landmarks drive an attention map, or which branches train); the final evaluation
  and prediction use `config.model`, a phase's periodic evaluations the module it trains.
  `steps_per_epoch` is that of the phase's own training data.
  """

  name: str
  start_step: int
  num_steps: int
  trainable: str  # regex matched against '/'-joined parameter paths
  optimizer: ml_collections.ConfigDict
  loss: ml_collections.ConfigDict
  data: ml_collections.ConfigDict
  model: ml_collections.ConfigDict
  steps_per_epoch: int
  copy: tuple[tuple[str, str], ...] = ()  # (to, from) '/'-paths copied when the phase starts

  @property
  def end_step(self) -> int:
    return self.start_step + self.num_steps


def merged(base: ml_collections.ConfigDict, overrides, where: str) -> ml_collections.ConfigDict:
  """`base` with `overrides` applied; a key `base` does not have is refused, naming it."""
  out = ml_collections.ConfigDict(base.to_dict())
  for key, value in dict(overrides or {}).items():
    if key not in out:
      raise ValueError(f"{where}.{key} is not a config field; {where} has {sorted(out.keys())}")
    nested = isinstance(value, Mapping | ml_collections.ConfigDict)
    if isinstance(out[key], ml_collections.ConfigDict) and nested:
      out[key] = merged(out[key], value, f"{where}.{key}")
    else:
      out[key] = value
  return out


def phase_specs(config) -> list[dict]:
  """The config's phase dicts (one phase of `num_epochs` when `config.phases` is empty),
  checked: unknown keys and overrides of run-level fields are refused."""
  specs = [dict(s) for s in (config.get("phases") or [])] or [
      {"name": "train", "num_epochs": config.num_epochs}]
  for i, spec in enumerate(specs):
    where = f"phase {spec.get('name', i)!r}"
    unknown = sorted(set(spec) - set(PHASE_KEYS))
    if unknown:
      raise ValueError(f"{where}: unknown keys {unknown}; a phase has {list(PHASE_KEYS)}")
    if "name" not in spec or ("num_epochs" in spec) == ("num_steps" in spec):
      raise ValueError(f"{where}: give a name and exactly one of num_epochs, num_steps")
    run_level = sorted(set(dict(spec.get("data") or {})) & set(RUN_LEVEL_DATA))
    if run_level:
      raise ValueError(f"{where}: data.{run_level[0]} is the run's (evaluation is the same for "
                       "every phase); set it in config.data")
  return specs


def resolve_phases(config, steps_per_epoch) -> list[Phase]:
  """The config's phases with absolute step ranges.

  Args:
    steps_per_epoch: an int, or a function (phase data config) -> the steps per epoch of that
      phase's training data (phases may read different data).
  """
  per_epoch = steps_per_epoch if callable(steps_per_epoch) else lambda _: steps_per_epoch
  phases, start = [], 0
  for spec in phase_specs(config):
    where = f"phase {spec['name']!r}"
    data = merged(config.data, spec.get("data"), f"{where}: data")
    epoch = per_epoch(data)
    steps = spec.get("num_steps") or round(spec["num_epochs"] * epoch)
    if config.get("max_steps_per_phase"):
      steps = min(steps, config.max_steps_per_phase)
    if steps < 1:
      raise ValueError(f"{where} has no step: num_epochs {spec.get('num_epochs')} of "
                       f"{epoch} steps per epoch rounds to {steps}; give more epochs or "
                       "num_steps")
    phases.append(Phase(
        name=spec["name"], start_step=start, num_steps=int(steps),
        trainable=spec.get("trainable", ".*"),
        optimizer=merged(config.optimizer, spec.get("optimizer"), f"{where}: optimizer"),
        loss=merged(config.loss, spec.get("loss"), f"{where}: loss"),
        data=data, model=merged(config.model, spec.get("model"), f"{where}: model"),
        steps_per_epoch=epoch, copy=tuple(dict(spec.get("copy") or {}).items())))
    start += int(steps)
  return phases


def phase_at(phases: list[Phase], step: int) -> int:
  """Index of the phase that trains step `step` (the last phase once training is done)."""
  for i, phase in enumerate(phases):
    if step < phase.end_step:
      return i
  return len(phases) - 1
