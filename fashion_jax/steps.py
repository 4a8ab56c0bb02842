"""The compiled steps: the pure update `(state, batch) -> (state, metrics)` and the prediction
step `(variables, batch) -> predictions`, built from a module and a system, nothing else."""

from __future__ import annotations

import functools

import jax
import optax

from fashion_jax.state import TrainState


def train_step(state: TrainState, batch: dict, *, apply_fn, loss_fn,
               update_stats=None) -> tuple[TrainState, dict]:
  """One update. Pure: everything random comes from `state.rng` and `state.step`.

  Args:
    apply_fn: the phase's `module.apply`.
    loss_fn: (outputs, batch) -> (total, {term: value}).
    update_stats: a tree of bools shaped like `state.batch_stats` (False: the statistic belongs
      to a frozen module and keeps its value), or None when every statistic updates.
  """
  rng = jax.random.fold_in(state.rng, state.step)

  def objective(params):
    outputs, updates = apply_fn({"params": params, "batch_stats": state.batch_stats}, batch,
                                train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
    total, terms = loss_fn(outputs, batch)
    return total, (terms, updates)

  (total, (terms, updates)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
  stats = updates.get("batch_stats", state.batch_stats)
  if update_stats is not None and stats:
    stats = jax.tree.map(lambda keep_new, old, new: new if keep_new else old, update_stats,
                         state.batch_stats, stats)
  state = state.apply_gradients(grads=grads, batch_stats=stats)
  metrics = {"loss": total, "grad_norm": optax.global_norm(grads),
             **{f"loss/{k}": v for k, v in terms.items()}}
  return state, metrics


def compile_train_step(module, system, loss_cfg, update_stats=None):
  """`train_step` for `module` and `system.loss` with `loss_cfg`, jitted, state donated."""
  loss_fn = lambda outputs, batch: system.loss(outputs, batch, loss_cfg)
  step = functools.partial(train_step, apply_fn=module.apply, loss_fn=loss_fn,
                           update_stats=update_stats)
  return jax.jit(step, donate_argnums=0)


def compile_predict_step(module, system):
  """(variables, batch) -> the system's predictions, jitted: evaluation, `predict`, benchmarks."""
  return jax.jit(lambda v, b: system.predict(module.apply(v, b, train=False), b))
