"""Heatmap ops: rendering, decoding and the round trip between them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fashion_jax.ops import heatmaps


def test_gaussian_peak_value_and_shape():
  pts = jnp.array([[[3.0, 5.0], [0.0, 0.0]]])  # [B=1, L=2, 2]
  valid = jnp.array([[True, False]])
  maps = heatmaps.gaussian_heatmaps(pts, valid, height=8, width=10, sigma=1.0)
  assert maps.shape == (1, 8, 10, 2)
  assert maps[0, 5, 3, 0] == pytest.approx(1.0)
  # One pixel away along x: exp(-1/2).
  assert maps[0, 5, 4, 0] == pytest.approx(np.exp(-0.5), rel=1e-6)
  assert float(jnp.abs(maps[..., 1]).max()) == 0.0  # invalid point -> empty map


def test_nan_points_are_treated_as_invalid():
  pts = jnp.array([[[jnp.nan, 2.0]]])
  maps = heatmaps.gaussian_heatmaps(pts, jnp.array([[True]]), 6, 6, 1.0)
  assert not jnp.isnan(maps).any() and float(maps.max()) == 0.0


def test_render_decode_round_trip_subpixel():
  rng = np.random.default_rng(0)
  pts = rng.uniform(1.0, 14.0, size=(16, 5, 2)).astype(np.float32)
  maps = heatmaps.gaussian_heatmaps(jnp.asarray(pts), jnp.ones((16, 5), bool), 16, 16, 1.5)
  decoded, scores = heatmaps.argmax_decode(maps)
  err = np.abs(np.asarray(decoded) - pts)
  # Integer argmax alone is off by up to 0.5; the quarter shift brings the worst case to 0.25
  # (+ tiny float slack) because it always moves toward the true sub-pixel location.
  assert err.max() <= 0.25 + 1e-4
  plain, _ = heatmaps.argmax_decode(maps, subpixel=False)
  assert np.abs(np.asarray(plain) - pts).mean() > err.mean()
  assert np.all(np.asarray(scores) > 0.8)


def test_quarter_shift_direction_and_border():
  m = np.zeros((1, 5, 5, 1), np.float32)
  m[0, 2, 2, 0], m[0, 2, 3, 0], m[0, 1, 2, 0] = 1.0, 0.5, 0.2  # right and upper neighbours
  pts, _ = heatmaps.argmax_decode(jnp.asarray(m))
  np.testing.assert_allclose(np.asarray(pts)[0, 0], [2.25, 1.75])
  m = np.zeros((1, 5, 5, 1), np.float32)
  m[0, 0, 0, 0] = 1.0  # peak in the corner: no shift toward the missing outside neighbour
  pts, _ = heatmaps.argmax_decode(jnp.asarray(m))
  np.testing.assert_allclose(np.asarray(pts)[0, 0], [0.0, 0.0])


def test_soft_argmax_is_close_and_differentiable():
  pts = jnp.array([[[4.3, 7.6]]])
  maps = heatmaps.gaussian_heatmaps(pts, jnp.ones((1, 1), bool), 12, 12, 1.0)
  # softmax(log g) is the Gaussian discretised on the grid, whose mean is the true point.
  est = heatmaps.soft_argmax(jnp.log(maps))
  np.testing.assert_allclose(np.asarray(est), np.asarray(pts), atol=1e-3)
  grad = jax.grad(lambda m: heatmaps.soft_argmax(m).sum())(maps)
  assert jnp.isfinite(grad).all() and float(jnp.abs(grad).sum()) > 0


def test_input_map_coordinate_round_trip():
  p = jnp.array([[0.0, 0.0], [511.0, 255.5]])
  np.testing.assert_allclose(heatmaps.map_to_input(heatmaps.input_to_map(p, 8), 8), p, atol=1e-5)
  # The centre of input pixels 0..7 (3.5) is the centre of map pixel 0.
  assert float(heatmaps.input_to_map(jnp.array(3.5), 8)) == pytest.approx(0.0)


def test_heatmap_ops_run_jitted_and_under_vmap():
  rng = np.random.default_rng(1)
  pts = jnp.asarray(rng.uniform(1.0, 10.0, size=(4, 3, 2)).astype(np.float32))
  valid = jnp.array([[True, False, True]] * 4)

  def pipeline(p, v):
    maps = heatmaps.gaussian_heatmaps(p, v, 12, 12, 1.0)
    return maps, heatmaps.argmax_decode(maps)[0], heatmaps.soft_argmax(jnp.log(maps + 1e-6))

  eager = pipeline(pts, valid)
  per_example = jax.jit(jax.vmap(pipeline))(pts, valid)
  for e, v in zip(eager, per_example, strict=True):
    np.testing.assert_allclose(v, e, atol=1e-5)
  # The invisible landmark's target map is empty; a visible one's nearest pixel is at most
  # (0.5, 0.5) from the point, so its peak is at least exp(-0.25).
  assert float(eager[0][..., 1].max()) == 0.0
  assert np.all(np.asarray(eager[0][..., 0]).max(axis=(-2, -1)) >= np.exp(-0.25) - 1e-6)
