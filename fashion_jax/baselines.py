"""Constant predictors fitted on training examples: the "training mean" baselines the papers'
tables are compared with. Each returns one example's predictions (numpy); the evaluator repeats
them for every test image."""

from __future__ import annotations

import numpy as np

from fashion_jax.data import schema


def mean_points(points: np.ndarray, visibility: np.ndarray, valid: np.ndarray) -> np.ndarray:
  """[L, 2] mean position of each point over the examples where it is located (not ABSENT).

  Args:
    points: [N, L, 2] network-input pixels; visibility: [N, L] schema codes; valid: [N] bool.
  """
  located = (np.asarray(visibility) != schema.ABSENT) & np.asarray(valid, bool)[:, None]
  total = (np.asarray(points, np.float64) * located[..., None]).sum(0)
  return (total / np.maximum(located.sum(0), 1)[:, None]).astype(np.float32)


def class_frequencies(labels: np.ndarray, valid: np.ndarray, num_classes: int) -> np.ndarray:
  """[C] how often each class is the label (missing labels, -1, left out)."""
  labels = np.asarray(labels)
  labels = labels[np.asarray(valid, bool) & (labels >= 0)]
  counts = np.bincount(labels, minlength=max(num_classes, 1)).astype(np.float64)
  return (counts / max(counts.sum(), 1.0)).astype(np.float32)


def positive_rates(labels: np.ndarray, valid: np.ndarray) -> np.ndarray:
  """[A] fraction of known labels that are positive, per binary label (unknown = -1)."""
  labels = np.asarray(labels, np.float64)[np.asarray(valid, bool)]
  known = labels >= 0
  return ((labels * known).sum(0) / np.maximum(known.sum(0), 1)).astype(np.float32)
