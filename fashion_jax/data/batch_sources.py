"""Where a system's training batches come from.

The default, `Examples`, is one augmented example per batch row (fashion_jax.data.pipeline).
`Tuples` groups records by `item_id` and `domain` (shop/street): pairs (an anchor and another
image of the same item), triplets (an anchor, a positive of the same item, a negative of another
item) or two views of one example (two augmentations). Partner fields are prefixed with their
role: `positive/image`, `negative/landmarks`, `view2/image`, ...

Like the default pipeline, every batch is a pure function of (seed, step): the anchor order is a
seeded shuffle per epoch and each row's partners and augmentations are drawn from a generator
seeded by the row's position, so a resumed run reads exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import grain
import numpy as np

from fashion_jax.data import pipeline, schema


@dataclasses.dataclass(frozen=True)
class TrainData:
  """What a batch source reads for one training phase.

  source: random-access source of the phase's training records.
  columns: fields -> {field: [len(source)] values}, small per-record fields (ids, domains)
    read without decoding images, aligned with `source`.
  start_step: the first batch to produce, counted from the phase's start.
  """

  source: object
  data_cfg: object
  columns: Callable[[tuple[str, ...]], dict[str, np.ndarray]]
  global_batch: int
  seed: int
  start_step: int = 0
  process_index: int = 0
  process_count: int = 1


class Examples:
  """One augmented example per batch row."""

  labels: tuple[str, ...] = ()  # label kinds needed beyond the system's own

  def labels_for(self, data_cfg) -> tuple[str, ...]:
    del data_cfg
    return self.labels

  def blank_example(self, data_cfg, spec: schema.DatasetSpec) -> dict:
    """One unbatched example with every field the batches have (shapes for `init`)."""
    return pipeline.blank_example(data_cfg, spec)

  def num_rows(self, data: TrainData) -> int:
    """Batch rows in one epoch (one per record here); a phase's epochs count these."""
    return len(data.source)

  def batches(self, data: TrainData) -> Iterator[dict]:
    return pipeline.train_batches(
        data.source, data.data_cfg, global_batch=data.global_batch, seed=data.seed,
        start_step=data.start_step, process_index=data.process_index,
        process_count=data.process_count)


EXAMPLES = Examples()
KINDS = {"pair": ("positive",), "triplet": ("positive", "negative"), "views": ("view2",)}


def merge(anchor: dict, partners: dict[str, dict]) -> dict:
  """The anchor's fields, then each partner's as `<role>/<field>`."""
  out = dict(anchor)
  for role, example in partners.items():
    out.update({f"{role}/{name}": value for name, value in example.items()})
  return out


@dataclasses.dataclass(frozen=True)
class Tuples(Examples):
  """Anchors with partners chosen by item id and domain.

  kind: "pair" (positive: another record of the anchor's item in `partner_domain`), "triplet"
    (also a negative: a `partner_domain` record of another item, uniformly at random) or "views"
    (the anchor record again, augmented independently).
  anchor_domain, partner_domain: "shop", "street" or "" (any).
  Anchors without a positive are left out (their number is in `describe`).
  """

  kind: str = "triplet"
  anchor_domain: str = ""
  partner_domain: str = ""

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"unknown tuple kind {self.kind!r}; use {sorted(KINDS)}")
    for domain in (self.anchor_domain, self.partner_domain):
      if domain and domain not in schema.DOMAINS:
        raise ValueError(f"domain {domain!r} is not one of {schema.DOMAINS} (or '')")

  @property
  def labels(self) -> tuple[str, ...]:
    return () if self.kind == "views" else ("item_id", "domain")

  def blank_example(self, data_cfg, spec: schema.DatasetSpec) -> dict:
    example = pipeline.blank_example(data_cfg, spec)
    return merge(example, {role: example for role in KINDS[self.kind]})

  def index(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
    """(anchors, {item: its partner candidates}, every partner candidate) as record indices."""
    n = len(columns["item_id"])
    items, domains = np.asarray(columns["item_id"]), np.asarray(columns["domain"])

    def in_domain(domain):
      return np.ones(n, bool) if not domain else domains == schema.DOMAINS.index(domain)

    partners = np.flatnonzero(in_domain(self.partner_domain) & (items >= 0))
    by_item = {}
    for index in partners:
      by_item.setdefault(int(items[index]), []).append(int(index))
    by_item = {item: np.asarray(members) for item, members in by_item.items()}
    anchors = [i for i in np.flatnonzero(in_domain(self.anchor_domain) & (items >= 0))
               if np.any(by_item.get(int(items[i]), np.empty(0)) != i)]
    return np.asarray(anchors, np.int64), by_item, partners

  def num_rows(self, data: TrainData) -> int:
    """One row per anchor: an epoch visits every anchor once."""
    if self.kind == "views":
      return len(data.source)
    return len(self.index(data.columns(("item_id", "domain")))[0])

  def describe(self, columns: dict[str, np.ndarray]) -> str:
    anchors, _, _ = self.index(columns)
    return (f"{self.kind}s: {len(anchors)} of {len(columns['item_id'])} records are anchors "
            f"({self.anchor_domain or 'any'} domain, partners from "
            f"{self.partner_domain or 'any'})")

  def _dataset(self, data: TrainData) -> grain.MapDataset:
    roles = KINDS[self.kind]
    columns = data.columns(("item_id", "domain")) if self.kind != "views" else None
    if self.kind == "views":
      anchors = np.arange(len(data.source))
    else:
      anchors, by_item, partners = self.index(columns)
      items = np.asarray(columns["item_id"])
      if not len(anchors):
        raise ValueError(f"no {self.kind} can be formed: {self.describe(columns)}")
      if self.kind == "triplet" and len(np.unique(items[partners])) < 2:
        raise ValueError("triplets need partner-domain images of at least two items")
    example_fn = pipeline.make_example_fn(data.data_cfg, train=True)

    def load(anchor: int, rng: np.random.Generator) -> dict:
      chosen = {}
      if self.kind == "views":
        chosen["view2"] = anchor
      else:
        item = int(items[anchor])
        candidates = by_item[item][by_item[item] != anchor]
        chosen["positive"] = int(rng.choice(candidates))
        if "negative" in roles:
          while True:  # rejection: terminates since another item exists
            negative = int(partners[rng.integers(len(partners))])
            if items[negative] != item:
              chosen["negative"] = negative
              break
      examples = {role: example_fn(data.source[index], rng) for role, index in chosen.items()}
      return merge(example_fn(data.source[int(anchor)], rng), examples)

    local = pipeline.local_batch(data.global_batch, data.process_count)
    ds = grain.MapDataset.source(anchors).shuffle(seed=data.seed).repeat()
    ds = ds.random_map(lambda a, rng: load(int(a), rng), seed=data.seed + 1)
    ds = ds.batch(local, drop_remainder=True)
    return ds[data.process_index::data.process_count]

  def batches(self, data: TrainData) -> Iterator[dict]:
    ds = self._dataset(data)[data.start_step:]
    return iter(ds.to_iter_dataset(pipeline.read_options(data.data_cfg)))


class Configured(Examples):
  """Tuples when the data config asks for them (`data.tuples` = "pair", "triplet" or "views",
  with `data.anchor_domain` and `data.partner_domain`), one example per row otherwise: a phase
  switches between them with its `data` overrides (single images, then triplets)."""

  def _source(self, data_cfg) -> Examples:
    kind = data_cfg.get("tuples", "")
    if not kind:
      return EXAMPLES
    return Tuples(kind=kind, anchor_domain=data_cfg.get("anchor_domain", ""),
                  partner_domain=data_cfg.get("partner_domain", ""))

  def labels_for(self, data_cfg) -> tuple[str, ...]:
    return self._source(data_cfg).labels

  def blank_example(self, data_cfg, spec: schema.DatasetSpec) -> dict:
    return self._source(data_cfg).blank_example(data_cfg, spec)

  def batches(self, data: TrainData) -> Iterator[dict]:
    return self._source(data.data_cfg).batches(data)

  def num_rows(self, data: TrainData) -> int:
    return self._source(data.data_cfg).num_rows(data)


CONFIGURED = Configured()
