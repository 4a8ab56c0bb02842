"""Losses: values by hand, and masked entries contribute nothing to the value or the gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fashion_jax import losses
from fashion_jax.data import schema


def test_softmax_cross_entropy_by_hand_and_masking():
  logits = jnp.array([[0.0, 0.0], [2.0, 0.0], [5.0, -5.0]])
  labels = jnp.array([1, 0, 1])
  mask = jnp.array([True, True, False])
  value = losses.softmax_cross_entropy(logits=logits, labels=labels, example_mask=mask)
  expected = (np.log(2) + np.log(1 + np.exp(-2))) / 2
  assert float(value) == pytest.approx(expected, rel=1e-6)
  grad = jax.grad(lambda lg: losses.softmax_cross_entropy(
      logits=lg, labels=labels, example_mask=mask))(logits)
  assert float(jnp.abs(grad[2]).sum()) == 0.0  # the masked example gets no gradient


def test_sigmoid_cross_entropy_weights_positives_and_ignores_unknown():
  logits = jnp.array([[0.0, 1.0, 3.0]])
  labels = jnp.array([[1, 0, -1]])  # the third label is unknown
  known = labels >= 0
  value = losses.sigmoid_cross_entropy(logits=logits, labels=labels, label_mask=known,
                                       positive_weight=3.0)
  expected = (3 * np.log(2) + np.log(1 + np.e)) / 2
  assert float(value) == pytest.approx(expected, rel=1e-6)
  grad = jax.grad(lambda lg: losses.sigmoid_cross_entropy(
      logits=lg, labels=labels, label_mask=known))(logits)
  assert float(grad[0, 2]) == 0.0 and float(grad[0, 0]) < 0 < float(grad[0, 1])


def test_heatmap_targets_and_l2_channel_mask():
  points = jnp.array([[[8.0, 8.0], [0.0, 0.0]]])
  vis = jnp.array([[schema.VISIBLE, schema.ABSENT]])
  maps = losses.keypoint_heatmap_targets(points=points, visibility=vis, map_hw=(4, 4), stride=4,
                                         sigma=1.0, background=True)
  assert maps.shape == (1, 4, 4, 3)
  # Input pixel 8 -> map (8 + 0.5) / 4 - 0.5 = 1.625: the peak falls between map pixels 1 and 2.
  assert int(jnp.argmax(maps[0, :, :, 0].max(0))) == 2 and float(maps[..., 1].max()) == 0.0
  np.testing.assert_allclose(maps[..., 2], 1 - maps[..., 0], atol=1e-6)  # background
  pred = jnp.zeros_like(maps)
  full = losses.heatmap_l2(predictions=pred, targets=maps, example_mask=jnp.array([True]))
  assert float(full) == pytest.approx(float(jnp.sum(maps**2)), rel=1e-6)
  only_first = losses.heatmap_l2(predictions=pred, targets=maps, example_mask=jnp.array([True]),
                                 channel_mask=jnp.array([[True, False, False]]))
  assert float(only_first) == pytest.approx(float(jnp.sum(maps[..., 0] ** 2)), rel=1e-6)
