"""Model variables and train states: initialisation (with pretrained weights), creation, resume
and the change of optimiser at a phase boundary. Shared by training, evaluation, `predict` and
`tools/bench_step`, so that every one of them initialises a model the same way."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax.training import train_state

from fashion_jax import optim, sharding
from fashion_jax import phases as phases_lib
from fashion_jax.models import weights


class TrainState(train_state.TrainState):
  """Parameters, optimiser state, batch-norm statistics, the run's rng and the step. The apply
  function is not part of the state: it is the phase's (`fashion_jax.steps`)."""

  batch_stats: Any = None
  rng: jax.Array = None


@functools.lru_cache(maxsize=32)
def _compiled_init(module):
  """One jitted `init` per module (modules are hashable dataclasses): the run, its untrained
  baseline and a resumed run reuse it instead of tracing the model again."""
  return jax.jit(lambda k, b: module.init({"params": k, "dropout": k}, b, train=False))


def init_variables(module, fields: tuple[str, ...], example: dict, seed: int) -> dict:
  """`module.init` on a batch of one `example` (only `fields`, those it has), keyed by `seed`:
  identical on every process and machine."""
  batch = {k: np.asarray(example[k])[None] for k in fields if k in example}
  return dict(_compiled_init(module)(jax.random.PRNGKey(seed), batch))


def pretrained_files(model_cfg) -> list[tuple[str, str]]:
  """(module path, weights file) pairs of `model_cfg.pretrained` that name a file."""
  pretrained = model_cfg.get("pretrained") or {}
  if isinstance(pretrained, str):  # configs written before several loads were supported
    return [(model_cfg.get("pretrained_at", "backbone"), pretrained)]
  return [(at.replace("__", "/"), path) for at, path in dict(pretrained).items() if path]


def load_pretrained(variables: dict, model_cfg) -> dict:
  """`variables` with every sub-module named in `model_cfg.pretrained` replaced by its file."""
  for at, path in pretrained_files(model_cfg):
    variables = weights.load_pretrained(variables, path, at=at,
                                        allow_unused=tuple(model_cfg.get("pretrained_unused", ())))
    logging.info("%s loaded from %s", at, path)
  return variables


def create_state(variables: dict, tx: optax.GradientTransformation, seed: int) -> TrainState:
  return TrainState.create(apply_fn=None, params=variables["params"], tx=tx,
                           batch_stats=variables.get("batch_stats", {}),
                           rng=jax.random.fold_in(jax.random.PRNGKey(seed), 1))


def variables_of(state: TrainState) -> dict:
  """The model variables of a train state (as `module.init` returns them: no empty
  collections)."""
  variables = {"params": state.params}
  if state.batch_stats:
    variables["batch_stats"] = state.batch_stats
  return variables


def restore_or_init(*, phases: list[phases_lib.Phase], checkpointer, mesh, seed: int,
                    abstract_variables: dict,
                    init_variables: Callable[[], dict],
                    config_changes: str = "") -> tuple[TrainState, int]:
  """The newest checkpoint of `checkpointer` that restores (see `Checkpointer.restore_newest`),
  else the initial state made from `init_variables()`; and the index of the phase whose
  optimiser the state holds.

  A checkpoint is restored into an abstract state made from `abstract_variables` (the
  variables' `jax.eval_shape`, replicated over `mesh`): nothing is initialised, compiled or
  loaded from pretrained files only to be overwritten. `config_changes`: how the config
  differs from the run's, said when no checkpoint restores.
  """
  def owner_of(step: int) -> int:  # a checkpoint at a phase's end holds that phase's optimiser
    return phases_lib.phase_at(phases, max(step - 1, 0))

  def initial(owner: int, variables: dict) -> TrainState:
    tx = optim.make_optimizer(phases[owner], variables["params"])
    return create_state(variables, tx, seed)

  replicated = sharding.replicated(mesh)

  def template(step: int) -> TrainState:
    shapes = jax.eval_shape(lambda: initial(owner_of(step), abstract_variables))
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                        shapes)

  restored, step = checkpointer.restore_newest(template, config_changes)
  if step is None:
    return sharding.put_replicated(initial(0, init_variables()), mesh), 0
  logging.info("resuming from step %d (phase %s)", step, phases[owner_of(step)].name)
  return restored, owner_of(step)


def copy_subtrees(tree: dict, pairs, where: str = "") -> dict:
  """`tree` with each '/'-path `to` replaced by a copy of the sub-tree at `from` (the same
  structure and shapes; checked)."""
  flat = flax.traverse_util.flatten_dict(tree, sep="/")
  for to, source in pairs:
    taken = {k[len(source) + 1:]: v for k, v in flat.items() if k.startswith(source + "/")}
    target = {k[len(to) + 1:]: v for k, v in flat.items() if k.startswith(to + "/")}
    if not taken or jax.tree.map(np.shape, taken) != jax.tree.map(np.shape, target):
      raise ValueError(f"{where}copy {source!r} -> {to!r}: the two sub-trees must exist and "
                       "have the same structure and shapes")
    # New buffers: the state is donated to the step, which refuses one buffer in two leaves.
    flat.update({f"{to}/{k}": jnp.copy(v) for k, v in taken.items()})
  return flax.traverse_util.unflatten_dict(flat, sep="/")


def enter_phase(phase: phases_lib.Phase, state: TrainState, mesh) -> TrainState:
  """Keeps parameters, statistics, rng and step (but for the phase's `copy`: sub-trees
  initialised from others, e.g. street branches from the shop ones trained before); starts the
  phase's optimiser afresh, replicated over `mesh`."""
  if phase.copy:
    where = f"phase {phase.name!r}: "
    state = state.replace(params=copy_subtrees(state.params, phase.copy, where))
    if state.batch_stats:
      sources = {source for _, source in phase.copy}
      if any(k.startswith(tuple(f"{s}/" for s in sources)) for k in
             flax.traverse_util.flatten_dict(state.batch_stats, sep="/")):
        state = state.replace(batch_stats=copy_subtrees(state.batch_stats, phase.copy, where))
  tx = optim.make_optimizer(phase, state.params)
  return state.replace(tx=tx, opt_state=sharding.put_replicated(tx.init(state.params), mesh))
