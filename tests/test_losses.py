"""Losses: values by hand, and masked entries contribute nothing to the value or the gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fashion_jax import losses


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


def test_class_weighted_bce_equals_torch_two_class_cross_entropy_with_weights():
  """The landmark-attention public code: CrossEntropyLoss(weight=[0.1, 1]) over two logits per
  attribute. One logit z per attribute is the same model (softmax([0, z]) = sigmoid(z))."""
  import torch

  rng = np.random.default_rng(0)
  logits = rng.normal(size=(4, 6)).astype(np.float32) * 3
  labels = (rng.random((4, 6)) < 0.3).astype(np.int64)
  two_class = np.stack([np.zeros_like(logits), logits], axis=1)  # [B, 2, A]
  expected = torch.nn.CrossEntropyLoss(weight=torch.tensor([0.1, 1.0]))(
      torch.from_numpy(two_class), torch.from_numpy(labels))
  value = losses.sigmoid_cross_entropy(logits=jnp.asarray(logits), labels=jnp.asarray(labels),
                                       label_mask=jnp.ones((4, 6), bool), positive_weight=1.0,
                                       negative_weight=0.1, normalize="weight")
  assert float(value) == pytest.approx(float(expected), rel=1e-5)
  # Unknown labels are left out of the numerator and of the sum of weights.
  known = jnp.asarray(rng.random((4, 6)) < 0.7)
  masked = losses.sigmoid_cross_entropy(logits=jnp.asarray(logits), labels=jnp.asarray(labels),
                                        label_mask=known, negative_weight=0.1, normalize="weight")
  keep = np.asarray(known)
  expected = torch.nn.CrossEntropyLoss(weight=torch.tensor([0.1, 1.0]))(
      torch.from_numpy(two_class.transpose(0, 2, 1)[keep]), torch.from_numpy(labels[keep]))
  assert float(masked) == pytest.approx(float(expected), rel=1e-5)


def test_heatmap_targets_take_sigma_in_input_pixels():
  points = jnp.array([[[8.0, 8.0], [0.0, 0.0]]])
  located = jnp.array([[True, False]])
  maps = losses.heatmap_targets(points=points, mask=located, map_hw=(4, 4), stride=4,
                                sigma_input_px=4.0, background=True)
  assert maps.shape == (1, 4, 4, 3)
  # Input pixel 8 -> map (8 + 0.5) / 4 - 0.5 = 1.625; sigma 4 input px = 1 map px.
  expected = np.exp(-((np.arange(4) - 1.625) ** 2) / 2)
  np.testing.assert_allclose(maps[0, :, :, 0], np.outer(expected, expected), rtol=1e-5)
  assert float(maps[..., 1].max()) == 0.0  # not located: an empty map
  np.testing.assert_allclose(maps[..., 2], 1 - maps[..., 0], atol=1e-6)  # background
  # The same points and sigma at twice the map resolution: the same Gaussian in input pixels.
  fine = losses.heatmap_targets(points=points, mask=located, map_hw=(8, 8), stride=2,
                                sigma_input_px=4.0)
  xs = (np.arange(8) + 0.5) * 2 - 0.5  # map pixel centres in input pixels
  g = np.exp(-((xs - 8.0) ** 2) / (2 * 4.0**2))
  np.testing.assert_allclose(fine[0, :, :, 0], np.outer(g, g), rtol=1e-5)


def test_heatmap_squared_error_normalisations_masks_and_stacks():
  targets = jnp.zeros((2, 2, 3, 2))  # B=2, 2x3 maps, 2 channels
  pred = jnp.ones((2, 2, 3, 2))  # every element off by 1
  examples = jnp.array([True, False])
  per_example = losses.heatmap_squared_error(predictions=pred, targets=targets,
                                             example_mask=examples)
  assert float(per_example) == 12.0  # 2*3*2 elements of the one counted example
  per_element = losses.heatmap_squared_error(predictions=pred, targets=targets,
                                             example_mask=examples, normalize="per_element")
  assert float(per_element) == 1.0
  channels = jnp.array([[True, False], [True, True]])
  masked = losses.heatmap_squared_error(predictions=pred, targets=targets, example_mask=examples,
                                        channel_mask=channels, normalize="per_element")
  assert float(masked) == 0.5  # 6 of 12 elements count, N stays 12 (the paper's 1/N)
  stacked = jnp.stack([pred, 2 * pred, 0 * pred])  # [S=3, B, H, W, C]
  values = losses.heatmap_squared_error(predictions=stacked, targets=targets,
                                        example_mask=examples)
  np.testing.assert_allclose(values, [12.0, 48.0, 0.0])
  grad = jax.grad(lambda p: losses.heatmap_squared_error(
      predictions=p, targets=targets, example_mask=examples, channel_mask=channels).sum())(pred)
  assert float(jnp.abs(grad[1]).sum()) == 0.0 and float(jnp.abs(grad[0, ..., 1]).sum()) == 0.0
