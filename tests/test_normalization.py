"""Batch norm with a closed-form gradient against flax's nn.BatchNorm and plain autodiff."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fashion_jax.models import layers
from fashion_jax.ops import normalization

FLAX_TORCH_BN = dict(momentum=0.9, epsilon=1e-5, use_fast_variance=False)


def _data(shape=(3, 5, 4, 6), seed=0):
  rng = np.random.default_rng(seed)
  # Per-channel offsets and spreads: a constant-scale input would hide axis mix-ups.
  x = rng.standard_normal(shape) * rng.uniform(0.5, 3, shape[-1]) + rng.uniform(-2, 2, shape[-1])
  return jnp.asarray(x, jnp.float32)


def _reference(x, scale, bias, eps=1e-5):
  """The textbook formula, differentiated by autodiff: (y, mean, biased var)."""
  mean = x.mean((0, 1, 2))
  var = jnp.square(x - mean).mean((0, 1, 2))
  return (x - mean) / jnp.sqrt(var + eps) * scale + bias, mean, var


@pytest.mark.parametrize("train", [True, False])
def test_module_matches_flax_batch_norm(train):
  x = _data()
  ours, theirs = layers.TorchBatchNorm(use_running_average=not train), nn.BatchNorm(
      use_running_average=not train, **FLAX_TORCH_BN)
  variables = theirs.init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(
      jnp.shape, variables)
  # Non-trivial parameters and running statistics, the same on both sides.
  variables = jax.tree.map(lambda v: v + jnp.arange(v.size, dtype=v.dtype) * 0.1, variables)
  y, updated = ours.apply(variables, x, mutable=["batch_stats"])
  y_ref, updated_ref = theirs.apply(variables, x, mutable=["batch_stats"])
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  for name in ("mean", "var"):
    np.testing.assert_allclose(updated["batch_stats"][name], updated_ref["batch_stats"][name],
                               rtol=1e-6)
  if not train:  # eval leaves the running statistics alone
    np.testing.assert_array_equal(updated["batch_stats"]["mean"],
                                  variables["batch_stats"]["mean"])


def test_gradients_match_autodiff_of_the_formula():
  x = _data()
  rng = np.random.default_rng(1)
  scale, bias = (jnp.asarray(rng.uniform(0.5, 2, 6), jnp.float32) for _ in range(2))
  weights = [jnp.asarray(rng.standard_normal(s), jnp.float32) for s in (x.shape, 6, 6)]

  def loss(fn):
    def f(x, scale, bias):
      y, mean, var = fn(x, scale, bias)
      # Cotangents on mean and var too: the running averages' path must not break gradients.
      return (y * weights[0]).sum() + (mean * weights[1]).sum() + (var * weights[2]).sum()
    return f

  ours = jax.grad(loss(lambda *a: normalization.batch_norm(*a, 1e-5)), (0, 1, 2))(x, scale, bias)
  theirs = jax.grad(loss(_reference), (0, 1, 2))(x, scale, bias)
  for a, b in zip(ours, theirs, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_gradient_by_hand_on_two_values():
  # One channel, values (0, 2): mean 1, var 1, xhat = (-1, 1). With dy = (1, 0), scale 1:
  # dbias = 1, dscale = -1, dx = inv_std / 2 * (2 dy - 1 - xhat * -1) = (0, 0) up to eps.
  x = jnp.array([[[[0.0]], [[2.0]]]])  # [1, 2, 1, 1]
  dy = jnp.array([[[[1.0]], [[0.0]]]])
  _, vjp = jax.vjp(lambda x, s, b: normalization.batch_norm(x, s, b, 0.0)[0], x,
                   jnp.ones(1), jnp.zeros(1))
  dx, dscale, dbias = vjp(dy)
  np.testing.assert_allclose(dbias, [1.0])
  np.testing.assert_allclose(dscale, [-1.0])
  np.testing.assert_allclose(dx.ravel(), [0.0, 0.0], atol=1e-7)


def test_half_precision_input_keeps_float32_statistics():
  x = _data().astype(jnp.bfloat16)
  module = layers.TorchBatchNorm(dtype=jnp.bfloat16)
  variables = module.init(jax.random.key(0), x)
  y, updated = module.apply(variables, x, mutable=["batch_stats"])
  assert y.dtype == jnp.bfloat16
  assert updated["batch_stats"]["var"].dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y, np.float32).mean((0, 1, 2)), 0.0, atol=0.05)
