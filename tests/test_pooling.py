"""ops.pooling.max_pool: flax's max pool, values and gradients, ties included."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fashion_jax.ops import pooling

CASES = [((3, 3), (2, 2), "SAME", (2, 16, 16, 3)), ((3, 3), (2, 2), "SAME", (1, 15, 13, 2)),
         ((2, 2), (2, 2), "VALID", (2, 8, 10, 3)), ((3, 3), (2, 2), ((1, 1), (1, 1)), (1, 9, 9, 2)),
         ((3, 2), (1, 2), ((0, 2), (1, 0)), (1, 7, 8, 1))]


@pytest.mark.parametrize("window, strides, padding, shape", CASES)
def test_matches_flax_with_ties(window, strides, padding, shape):
  rng = np.random.default_rng(0)
  # Small integers after a ReLU: most windows hold tied maxima, many of them all zeros.
  x = jnp.asarray(np.maximum(rng.integers(-3, 3, shape), 0), jnp.float32)
  ours = lambda x: pooling.max_pool(x, window, strides, padding)
  theirs = lambda x: nn.max_pool(x, window, strides=strides, padding=padding)
  np.testing.assert_array_equal(ours(x), theirs(x))
  probe = jnp.asarray(rng.standard_normal(theirs(x).shape), jnp.float32)
  grad = lambda f: jax.jit(jax.grad(lambda x: jnp.sum(f(x) * probe)))(x)
  np.testing.assert_allclose(grad(ours), grad(theirs), rtol=1e-6, atol=1e-6)


def test_gradient_by_hand():
  # One 2x2 window holding two equal maxima: the first in row-major order takes the gradient.
  x = jnp.array([[1.0, 5.0], [5.0, 2.0]]).reshape(1, 2, 2, 1)
  dx = jax.grad(lambda x: 3.0 * pooling.max_pool(x, (2, 2), (2, 2)).sum())(x)
  np.testing.assert_array_equal(dx[0, ..., 0], [[0.0, 3.0], [0.0, 0.0]])
  # Overlapping windows (3x3, stride 1, one row and column of padding) on a peak: every window
  # that contains the peak sends its gradient there, 9 windows of 9.
  peak = jnp.zeros((1, 3, 3, 1)).at[0, 1, 1, 0].set(1.0)
  dx = jax.grad(lambda x: pooling.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1))).sum())(peak)
  assert float(dx[0, 1, 1, 0]) == 9.0 and float(dx.sum()) == 9.0


@pytest.mark.parametrize("window, strides, padding, shape", CASES)
def test_gradient_paths_agree(window, strides, padding, shape):
  # The backward pass picks one of two ways to place the gradient; both must give the same one.
  rng = np.random.default_rng(1)
  x = jnp.asarray(np.maximum(rng.integers(-3, 3, shape), 0), jnp.float32)
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(shape[1:3], window, strides, padding)
  x_pad = jnp.pad(x, ((0, 0), *padding, (0, 0)), constant_values=-jnp.inf)
  y = nn.max_pool(x, window, strides=strides, padding=padding)
  g = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
  by_offset = pooling._gradient_by_offset(x_pad, y, g, window, strides)
  by_phase = pooling._gradient_by_phase(x_pad, y, g, window, strides)
  np.testing.assert_array_equal(by_offset, by_phase)
