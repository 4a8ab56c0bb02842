"""Every system's train step computes in bfloat16 with float32 parameters (`model.dtype`): on the
same batch and initial variables its first loss is within 5% of float32's, the loss stays finite
and falls over a few steps, and the parameters stay float32. float16 is refused (no loss
scaling). Toy size, on whatever device JAX has (the device check runs this file on a GPU)."""

import importlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from fashion_jax import config_check, optim, state, steps, systems
from fashion_jax.tools import benchmarking

SYSTEMS = ("fpm", "landmark_attention", "two_stream", "sister", "mtct")
# |bf16 - f32| / f32 of the first step's loss; measured up to 1.8% (SisterNetwork) at toy size.
FIRST_LOSS_RTOL = 0.05
STEPS = 4


def _phase_and_batch(name):
  config = importlib.import_module(f"configs.{name}").get_config("runlocal")
  config.batch_size = 2
  system = systems.get_system(config.system)
  spec = benchmarking.benchmark_spec(config)
  phase = benchmarking.benchmark_phase(config)
  batch = benchmarking.fake_batch(phase.data, system, spec, config.batch_size)
  return config, system, spec, phase, batch


def _run(config, system, spec, phase, batch, dtype, num_steps):
  """Losses of `num_steps` steps on `batch`, the final params, and the step's jaxpr."""
  model_cfg = ml_collections.ConfigDict(phase.model.to_dict())
  model_cfg.dtype = dtype
  module = system.make_module(model_cfg, spec)
  variables = state.init_variables(module, system.batch_fields,
                                   {k: v[0] for k, v in batch.items()}, config.seed)
  train_state = state.create_state(variables, optim.make_optimizer(phase, variables["params"]),
                                   config.seed)
  step = steps.compile_train_step(module, system, phase.loss)
  jaxpr = jax.make_jaxpr(step)(train_state, batch)
  losses = []
  for _ in range(num_steps):
    train_state, metrics = step(train_state, batch)
    losses.append(float(metrics["loss"]))
  return losses, train_state.params, jaxpr


def _product_dtypes(jaxpr) -> set:
  """Operand dtypes of every convolution and matrix product in `jaxpr` (nested ones too)."""
  found = set()
  for eqn in benchmarking._equations(jaxpr.jaxpr):
    if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
      found.update(str(v.aval.dtype) for v in eqn.invars[:2])
  return found


@pytest.mark.parametrize("name", SYSTEMS)
def test_the_step_computes_in_bfloat16_and_learns(name):
  config, system, spec, phase, batch = _phase_and_batch(name)
  reference, _, f32_jaxpr = _run(config, system, spec, phase, batch, "float32", 1)
  losses, params, bf16_jaxpr = _run(config, system, spec, phase, batch, "bfloat16", STEPS)
  assert reference[0] > 0, "the fake batch must give a live loss"
  assert np.all(np.isfinite(losses)), losses
  assert abs(losses[0] - reference[0]) <= FIRST_LOSS_RTOL * reference[0], (losses, reference)
  assert losses[-1] < losses[0], losses
  assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
  assert "bfloat16" in _product_dtypes(bf16_jaxpr)
  assert "bfloat16" not in _product_dtypes(f32_jaxpr)


def test_float16_without_loss_scaling_is_refused():
  from configs import fpm

  config = fpm.get_config("runlocal")
  config.model.dtype = "float16"
  with pytest.raises(config_check.ConfigError, match="loss scaling.*bfloat16"):
    config_check.check(config)
  config.model.dtype = "bfloat16"
  config_check.check(config)
