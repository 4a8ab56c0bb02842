"""Which records a run trains on, selects checkpoints on (eval) and reports on (test).

A role reads a stored split when the dataset has it with the labels the system needs. With
`data.num_folds` > 0 the test role is fold `data.fold` of the training split instead
(cross-validation, `fashion_jax.data.folds`: by record index and seed). Where it
does not (FashionAI as downloaded has only its labelled training part; its test CSVs have no
keypoints), a deterministic hold-out of the labelled training split stands in: a record goes to
the test hold-out when u < f_test and to the eval hold-out when f_test <= u < f_test + f_eval,
with u = SHA-256(seed, key) read as a number in [0, 1) and key the record's item id (so the
views of one garment stay on one side) or, where the dataset has no item ids, its image id. u
depends only on the key and the seed, so the hold-out is the same on every machine, library
version and record order, and a record keeps its side when the dataset grows.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np

from fashion_jax.data import folds, schema

ROLES = ("train", "eval", "test")
_HOLDOUT_FIELD = {"eval": "validation", "test": "test"}  # data.holdout.<field> per role


@dataclasses.dataclass(frozen=True)
class Selection:
  """The records of one role.

  split: the stored split read; indices: record indices within it (None: all of them);
  description: what a user reads in the log and in results files.
  """

  split: str
  indices: np.ndarray | None
  description: str

  def size(self, split_sizes: dict[str, int]) -> int:
    return split_sizes[self.split] if self.indices is None else len(self.indices)


def unit_hash(keys, seed: int) -> np.ndarray:
  """[N] numbers in [0, 1) from SHA-256 of (seed, key): uniform, stable, order-independent."""
  digests = (hashlib.sha256(f"{seed}:{k}".encode()).digest()[:8] for k in keys)
  return np.fromiter((int.from_bytes(d, "big") / 2.0**64 for d in digests), np.float64)


def holdout_keys(columns: dict[str, np.ndarray]) -> tuple[list[str], str]:
  """Per record the hold-out key and its kind: item ids where every record has one."""
  items = np.asarray(columns["item_id"])
  if len(items) and (items >= 0).all():
    return [f"item:{int(i)}" for i in items], "item id"
  ids = [i.decode() if isinstance(i, bytes) else str(i) for i in columns["image_id"]]
  return [f"image:{i}" for i in ids], "image id"


ColumnReader = Callable[[str, tuple[str, ...]], dict[str, np.ndarray]]


def _unusable(split: str, split_sizes, spec: schema.DatasetSpec, labels) -> str | None:
  """Why `split` cannot be scored with `labels`, or None when it can."""
  if split not in split_sizes:
    return f"the dataset has no split {split!r} (it has {sorted(split_sizes)})"
  missing = spec.missing_labels(split, labels)
  if missing:
    return f"split {split!r} has no {'/'.join(missing)} labels"
  return None


def resolve(data_cfg, spec: schema.DatasetSpec, split_sizes: dict[str, int], labels,
            read_columns: ColumnReader) -> dict[str, Selection]:
  """The train, eval and test selections of `data_cfg` (see the module docstring).

  Args:
    spec, split_sizes: the dataset's spec and {stored split: number of records}.
    labels: the label kinds the system trains and scores on.
    read_columns: (split, fields) -> {field: [N] array}, the small fields of every record.

  Raises:
    ValueError: the training split is missing or unlabelled, or a role has neither a usable
      split nor a hold-out fraction, or a hold-out is empty.
  """
  train = data_cfg.train_split
  why = _unusable(train, split_sizes, spec, labels)
  if why:
    raise ValueError(f"cannot train: {why} (the system needs {'/'.join(labels)}; "
                     "data.train_split names the split)")
  chosen, holdouts = {}, {}
  available = np.ones(split_sizes[train], bool)  # training records no other role has taken
  num_folds = int(data_cfg.get("num_folds", 0))
  if num_folds:  # cross-validation: the test role is one fold of the training split
    _, test = folds.fold_indices(split_sizes[train], int(data_cfg.fold), num_folds,
                                 seed=int(data_cfg.holdout.seed))
    available[test] = False
    chosen["test"] = Selection(train, test, f"fold {int(data_cfg.fold)} of {num_folds} of "
                               f"{train!r} ({len(test)} records, seed {data_cfg.holdout.seed})")
  for role, split in (("eval", data_cfg.eval_split), ("test", data_cfg.test_split)):
    if role in chosen:
      continue
    why = _unusable(split, split_sizes, spec, labels)
    if why is None:
      chosen[role] = Selection(split, None, f"{split!r}")
      continue
    fraction = float(data_cfg.holdout[_HOLDOUT_FIELD[role]])
    if not 0 < fraction < 1:
      raise ValueError(f"no {role} data: {why}, and data.holdout.{_HOLDOUT_FIELD[role]} = "
                       f"{fraction} holds nothing out; set it in (0, 1)")
    holdouts[role] = (fraction, why)
  if holdouts:
    columns = read_columns(train, ("item_id", "image_id"))
    keys, kind = holdout_keys(columns)
    u = unit_hash(keys, int(data_cfg.holdout.seed))
    low = 0.0
    for role in ("test", "eval"):  # test first: its records never depend on the eval fraction
      if role not in holdouts:
        continue
      fraction, why = holdouts[role]
      members = (u >= low) & (u < low + fraction) & available
      low += fraction
      if not members.any():
        raise ValueError(f"the {role} hold-out ({fraction:.0%} of {train!r} by {kind}) is "
                         f"empty: {len(u)} records are too few; raise "
                         f"data.holdout.{_HOLDOUT_FIELD[role]}")
      available &= ~members
      chosen[role] = Selection(train, np.flatnonzero(members), (
          f"hold-out of {train!r}: {int(members.sum())} records, {fraction:.0%} by {kind}, "
          f"seed {int(data_cfg.holdout.seed)} ({why})"))
  if available.all():
    chosen["train"] = Selection(train, None, f"{train!r}")
  else:
    chosen["train"] = Selection(train, np.flatnonzero(available), (
        f"{train!r} without the records of the other roles ({int(available.sum())} of "
        f"{len(available)})"))
  return {role: chosen[role] for role in ROLES}


def restrict_to_domain(selection: Selection, domain: str, domains: np.ndarray) -> Selection:
  """Only the records of `domain` ("shop" or "street"); `domains`: [N] the split's codes."""
  if domain not in schema.DOMAINS:
    raise ValueError(f"data domain {domain!r} is not one of {schema.DOMAINS} (or '' for all)")
  base = (np.arange(len(domains)) if selection.indices is None else selection.indices)
  kept = base[np.asarray(domains)[base] == schema.DOMAINS.index(domain)]
  if not len(kept):
    raise ValueError(f"{selection.description} has no {domain} images")
  return Selection(selection.split, kept,
                   f"{selection.description}, {domain} only ({len(kept)} records)")


def restrict_to_categories(selection: Selection, categories, codes: np.ndarray) -> Selection:
  """Only the records of the named FashionAI `categories`; `codes`: [N] the split's
  `fashionai_category` indices into `schema.FASHIONAI_CATEGORIES` (-1: none)."""
  unknown = sorted(set(categories) - set(schema.FASHIONAI_CATEGORIES))
  if unknown:
    raise ValueError(f"data.categories names {unknown}, not FashionAI categories "
                     f"{list(schema.FASHIONAI_CATEGORIES)}")
  wanted = [schema.FASHIONAI_CATEGORIES.index(c) for c in categories]
  base = (np.arange(len(codes)) if selection.indices is None else selection.indices)
  kept = base[np.isin(np.asarray(codes)[base], wanted)]
  if not len(kept):
    raise ValueError(f"{selection.description} has no {', '.join(categories)} images")
  return Selection(selection.split, kept,
                   f"{selection.description}, {'/'.join(categories)} only ({len(kept)} records)")
