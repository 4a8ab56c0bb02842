"""Optimisers, learning-rate schedules and parameter freezing: all optax, all from config
(the phases that choose them per training stage are `fashion_jax.phases`)."""

from __future__ import annotations

import re

import flax.traverse_util
import optax

from fashion_jax import phases as phases_lib


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


def updated_statistics(params, batch_stats, pattern: str):
  """Per batch-norm statistic, whether it updates in a phase that trains `pattern`.

  A statistic belongs to the module that holds it (`backbone/bn1/mean` to `backbone/bn1`); it
  updates when that module's parameters train, so a frozen backbone keeps its ImageNet running
  statistics. A statistic whose module has no parameters updates when its own path matches.

  Returns:
    A tree of bools shaped like `batch_stats` (static: the train step selects with it).
  """
  labels = flax.traverse_util.flatten_dict(params, sep="/")
  regex = re.compile(pattern)
  trained, owners = set(), set()
  for path in labels:
    module = path.rpartition("/")[0]
    owners.add(module)
    if regex.fullmatch(path):
      trained.add(module)
  flat = flax.traverse_util.flatten_dict(batch_stats or {}, sep="/")
  mask = {}
  for path in flat:
    module = path.rpartition("/")[0]
    mask[path] = module in trained if module in owners else bool(regex.fullmatch(path))
  return flax.traverse_util.unflatten_dict(mask, sep="/") if mask else batch_stats


def make_optimizer(phase: phases_lib.Phase, params) -> optax.GradientTransformation:
  cfg = phase.optimizer
  schedule = learning_rate_schedule(cfg, phase.steps_per_epoch)
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
