"""ops.convolution.conv_general_dilated: XLA's convolution, with 1x1 ones as matrix products."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from fashion_jax.ops import convolution

NHWC = ("NHWC", "HWIO", "NHWC")
# (kernel, strides, padding, input): 1x1 ones take the matrix-product path, the rest fall back.
CASES = [((1, 1), (1, 1), "SAME", (2, 6, 5, 3)), ((1, 1), (2, 2), "SAME", (2, 7, 6, 3)),
         ((1, 1), (2, 1), "VALID", (1, 6, 6, 4)), ((1, 1), (1, 1), ((1, 1), (0, 0)), (1, 4, 4, 2)),
         ((3, 3), (2, 2), ((1, 1), (1, 1)), (2, 7, 7, 3))]


@pytest.mark.parametrize("kernel, strides, padding, shape", CASES)
def test_values_and_gradients_match_xla(kernel, strides, padding, shape):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  w = jnp.asarray(rng.standard_normal((*kernel, shape[-1], 5)), jnp.float32)

  def run(conv):
    dn = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
    y, vjp = jax.vjp(lambda x, w: conv(x, w, strides, padding, dimension_numbers=dn), x, w)
    probe = jnp.asarray(np.random.default_rng(1).standard_normal(y.shape), jnp.float32)
    return (y, *vjp(probe))

  pairs = zip(run(convolution.conv_general_dilated), run(lax.conv_general_dilated), strict=True)
  for ours, theirs in pairs:
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_pointwise_convolutions_become_dots_and_others_stay_convolutions():
  x, w1, w3 = jnp.ones((1, 4, 4, 2)), jnp.ones((1, 1, 2, 3)), jnp.ones((3, 3, 2, 3))
  dn = lax.conv_dimension_numbers(x.shape, w1.shape, NHWC)
  ops = lambda w, padding: str(jax.make_jaxpr(
      lambda x, w: convolution.conv_general_dilated(x, w, (1, 1), padding,
                                                    dimension_numbers=dn))(x, w))
  assert "dot_general" in ops(w1, "SAME") and "conv_general_dilated" not in ops(w1, "SAME")
  assert "conv_general_dilated" in ops(w1, ((1, 1), (1, 1)))  # padded: not a plain product
  assert "conv_general_dilated" in ops(w3, "SAME")


def test_flax_conv_keeps_its_parameters_and_output():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 6, 3)), jnp.float32)
  plain = nn.Conv(4, (1, 1), strides=2)
  ours = nn.Conv(4, (1, 1), strides=2, conv_general_dilated=convolution.conv_general_dilated)
  params = plain.init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape,
                                                                                  params)
  np.testing.assert_allclose(ours.apply(params, x), plain.apply(params, x), rtol=1e-5, atol=1e-5)


def test_pointwise_weight_gradient_compiles_without_copying_an_operand():
  # Contracting a [B, H, W, C] operand over three axes makes XLA transpose it to [C, B*H*W]
  # first; a [B*H*W, C] operand contracted over its rows goes to the product as it is.
  x, g = jnp.ones((2, 8, 8, 16)), jnp.ones((2, 8, 8, 32))
  dn = lax.conv_dimension_numbers(x.shape, (1, 1, 16, 32), NHWC)

  def weight_gradient(x, g):
    conv = lambda w: convolution.conv_general_dilated(x * 2, w, (1, 1), "VALID",
                                                      dimension_numbers=dn)
    return jax.vjp(conv, jnp.ones((1, 1, 16, 32)))[1](g * 3)[0]

  hlo = jax.jit(weight_gradient).lower(x, g).compile().as_text()
  instructions = [line.split("=", 1)[1] for line in hlo.splitlines() if " = " in line]
  assert any(" dot(" in op for op in instructions)
  assert not [op for op in instructions if re.search(r"\} (copy|transpose)\(", op)]
