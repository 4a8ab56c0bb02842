"""Optimisers, schedules, parameter freezing and training phases: all optax, all from config.

A phase is data in the config (`config.phases`): a name, a length, which parameters train, and
overrides for the optimiser, the loss and the data. Paper-specific schedules (pre-train one
stream, then train jointly; shop then street) are phase lists, not forks of the trainer.
"""

from __future__ import annotations

import dataclasses
import re

import flax.traverse_util
import ml_collections
import optax


@dataclasses.dataclass(frozen=True)
class Phase:
  name: str
  start_step: int
  num_steps: int
  trainable: str  # regex matched against '/'-joined parameter paths
  optimizer: ml_collections.ConfigDict
  loss: ml_collections.ConfigDict
  data: ml_collections.ConfigDict

  @property
  def end_step(self) -> int:
    return self.start_step + self.num_steps


def _merged(base: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
  out = ml_collections.ConfigDict(base.to_dict())
  if overrides:
    out.update(dict(overrides))
  return out


def resolve_phases(config, steps_per_epoch: int) -> list[Phase]:
  """The config's phases with absolute step ranges (one phase when `config.phases` is empty)."""
  specs = list(config.get("phases") or []) or [{"name": "train", "num_epochs": config.num_epochs}]
  phases, start = [], 0
  for spec in specs:
    spec = dict(spec)
    steps = spec.get("num_steps") or round(spec["num_epochs"] * steps_per_epoch)
    if config.get("max_steps_per_phase"):
      steps = min(steps, config.max_steps_per_phase)
    phases.append(Phase(
        name=spec["name"], start_step=start, num_steps=int(steps),
        trainable=spec.get("trainable", ".*"),
        optimizer=_merged(config.optimizer, spec.get("optimizer")),
        loss=_merged(config.loss, spec.get("loss")),
        data=_merged(config.data, spec.get("data"))))
    start += int(steps)
  return phases


def phase_at(phases: list[Phase], step: int) -> int:
  """Index of the phase that trains step `step` (the last phase once training is done)."""
  for i, phase in enumerate(phases):
    if step < phase.end_step:
      return i
  return len(phases) - 1


def learning_rate_schedule(opt_cfg, steps_per_epoch: int) -> optax.Schedule:
  """Constant, or piecewise constant "multiply by `decay_factor` every N epochs", with warmup."""
  lr = opt_cfg.learning_rate
  if opt_cfg.schedule == "constant":
    schedule = optax.constant_schedule(lr)
  elif opt_cfg.schedule == "step":
    every = max(1, round(opt_cfg.decay_every_epochs * steps_per_epoch))
    schedule = optax.exponential_decay(lr, transition_steps=every,
                                       decay_rate=opt_cfg.decay_factor, staircase=True)
  elif opt_cfg.schedule == "cosine":
    schedule = optax.cosine_decay_schedule(lr, decay_steps=max(1, opt_cfg.decay_steps))
  else:
    raise ValueError(f"unknown schedule {opt_cfg.schedule!r}; use constant, step or cosine")
  if opt_cfg.get("warmup_steps"):
    warm = optax.linear_schedule(0.0, lr, opt_cfg.warmup_steps)
    schedule = optax.join_schedules([warm, schedule], [opt_cfg.warmup_steps])
  return schedule


def trainable_labels(params, pattern: str):
  """'train' / 'freeze' per parameter, by full-match of `pattern` on its '/'-joined path."""
  regex = re.compile(pattern)
  flat = flax.traverse_util.flatten_dict(params, sep="/")
  labels = {k: "train" if regex.fullmatch(k) else "freeze" for k in flat}
  if "train" not in labels.values():
    raise ValueError(f"trainable pattern {pattern!r} matches no parameter; some are: "
                     f"{sorted(flat)[:5]}")
  return flax.traverse_util.unflatten_dict(labels, sep="/")


def make_optimizer(phase: Phase, params, steps_per_epoch: int) -> optax.GradientTransformation:
  cfg = phase.optimizer
  schedule = learning_rate_schedule(cfg, steps_per_epoch)
  if cfg.name == "adam":
    tx = optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  elif cfg.name == "adamw":
    tx = optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
  elif cfg.name == "sgd":
    tx = optax.sgd(schedule, momentum=cfg.momentum or None, nesterov=bool(cfg.get("nesterov")))
  else:
    raise ValueError(f"unknown optimizer {cfg.name!r}; use adam, adamw or sgd")
  if cfg.get("grad_clip_norm"):
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), tx)
  if phase.trainable != ".*":
    tx = optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()},
                               trainable_labels(params, phase.trainable))
  return tx
