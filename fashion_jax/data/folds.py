"""Deterministic k-fold cross-validation over a random-access data source (DCSA uses 16 folds).

The fold of a record depends only on its index, the number of records and a seed (through
SHA-256, not a numpy generator), so folds are identical on every machine and library version.
"""

from __future__ import annotations

import hashlib

import numpy as np


def fold_assignment(num_examples: int, num_folds: int = 16, seed: int = 0) -> np.ndarray:
  """[num_examples] fold index of each record; fold sizes differ by at most one."""
  if not 2 <= num_folds <= num_examples:
    raise ValueError(f"need 2 <= num_folds <= num_examples, got {num_folds} and {num_examples}")
  keys = [hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(num_examples)]
  order = sorted(range(num_examples), key=keys.__getitem__)
  folds = np.empty(num_examples, np.int32)
  for fold, members in enumerate(np.array_split(np.asarray(order), num_folds)):
    folds[members] = fold
  return folds


def fold_indices(num_examples: int, fold: int, num_folds: int = 16,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(train, test) record indices for cross-validation fold `fold`, each sorted."""
  if not 0 <= fold < num_folds:
    raise ValueError(f"fold {fold} is not in [0, {num_folds})")
  assignment = fold_assignment(num_examples, num_folds, seed)
  return np.flatnonzero(assignment != fold), np.flatnonzero(assignment == fold)


class IndexedSource:
  """A random-access view of `source` restricted to `indices` (e.g. one fold's training part)."""

  def __init__(self, source, indices):
    self._source = source
    self._indices = np.asarray(indices, np.int64)

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, index: int):
    return self._source[int(self._indices[index])]

  def __repr__(self) -> str:
    return f"IndexedSource({len(self)} of {len(self._source)} records)"
