"""Batch normalisation in training with a hand-written gradient.

Autodiff of `y = (x - mean) * rsqrt(var + eps) * scale + bias`, with the mean and the variance
themselves functions of x, yields a backward pass of several reductions over the activation
(through the variance, through the mean, through the centred input) that XLA's CPU backend
fuses into separate passes, some of them recomputing the forward chain. The closed form needs
two per-channel sums of the output gradient and one elementwise pass:

  dbias = sum(dy),  dscale = sum(dy * xhat),
  dx = scale * inv_std / N * (N * dy - dbias - xhat * dscale)

(N values per channel). `batch_norm` returns the same values as `flax.linen.BatchNorm` with
`use_fast_variance=False` (the variance as mean((x - mean)^2), like torch) and gradients equal
to autodiff's up to float summation order.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def batch_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Normalises x over all axes but the last with its own batch statistics.

  x: [..., C] (statistics in at least float32); scale, bias: [C].
  Returns (y [..., C] in x's dtype promoted with the parameters', mean [C], var [C]); the
  biased variance, as the running average uses it. Gradients flow through mean and var too.
  """
  return _batch_norm(x, scale, bias, epsilon)


def _statistics(x):
  axes = tuple(range(x.ndim - 1))
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  mean = x.mean(axes)
  var = jnp.square(x - mean).mean(axes)
  return x, mean, var


def _forward(x, scale, bias, epsilon):
  x32, mean, var = _statistics(x)
  inv_std = jax.lax.rsqrt(var + epsilon)
  out_dtype = jnp.result_type(x, scale, bias)
  y = ((x32 - mean) * (inv_std * scale) + bias).astype(out_dtype)
  return (y, mean, var), (x, mean, inv_std, scale)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _batch_norm(x, scale, bias, epsilon):
  return _forward(x, scale, bias, epsilon)[0]


def _backward(epsilon, residuals, cotangents):
  del epsilon  # inv_std holds it
  x, mean, inv_std, scale = residuals
  dy, dmean, dvar = cotangents
  axes = tuple(range(x.ndim - 1))
  count = x.size // x.shape[-1]
  centred = x.astype(mean.dtype) - mean
  xhat = centred * inv_std
  dy = dy.astype(mean.dtype)
  dbias = dy.sum(axes)
  dscale = (dy * xhat).sum(axes)
  dx = (scale * inv_std / count) * (count * dy - dbias - xhat * dscale)
  # The statistics' own cotangents (zero when only the running averages use them).
  dx = dx + (dmean + 2.0 * dvar * centred) / count
  return (dx.astype(x.dtype), dscale.astype(scale.dtype), dbias.astype(scale.dtype))


_batch_norm.defvjp(_forward, _backward)
