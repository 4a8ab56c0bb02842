"""grain input pipelines over a random-access source of schema examples.

Training batches are a pure function of (seed, step): the example order is a seeded shuffle that
changes every epoch and each example's augmentation is seeded by its position, so a resumed run
reads exactly the batches an uninterrupted run would. With P processes, global batch `s` is the
concatenation of local batch `s * P + p` over processes `p`, identical to one process reading a
batch of the global size.

Evaluation visits every example exactly once: the index range is padded up to a whole number of
global batches with copies of the last example whose `valid` flag is False.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import cv2
import grain
import numpy as np

from fashion_jax.data import schema, splits, transforms

# Fields passed through from the stored example unchanged.
_LABEL_FIELDS = ("category", "attributes", "dcsa_labels", "domain", "item_id", "clothes_type",
                 "fashionai_category")
# Ground truth in the original frame, kept for evaluation in the published protocols.
_ORIGINAL_FIELDS = ("keypoints", "keypoints_visibility", "landmarks", "landmarks_visibility",
                    "bbox", "has_bbox")


SEGMENT_FILL = schema.SEGMENT_FILL


def segment(image: np.ndarray, mask: np.ndarray, has_mask: bool, fill: int) -> np.ndarray:
  """The image with its background (mask 0) set to `fill`; the image itself when the example
  has no mask (a run refuses datasets without masks; this keeps `predict` working on bare
  images)."""
  if not has_mask:
    return image
  out = np.full_like(image, fill)  # then the masked pixels copied over it: 50x np.where's speed
  return cv2.copyTo(image, np.ascontiguousarray(mask[..., 0] if mask.ndim == 3 else mask), out)


def augment_from_config(aug_cfg) -> transforms.Augment:
  return transforms.Augment(flip=bool(aug_cfg.flip), scale=tuple(aug_cfg.scale),
                            rotation=float(aug_cfg.rotation), translate=float(aug_cfg.translate),
                            colour=float(aug_cfg.colour))


_STREET = schema.DOMAINS.index("street")
# The class labels `data.street_label_fraction` removes from unlabelled street items.
_CLASS_LABELS = {"category": -1, "attributes": -1, "dcsa_labels": -1}


def street_item_labelled(item_id: int, fraction: float, seed: int) -> bool:
  """Whether a street item keeps its labels for training at `data.street_label_fraction`:
  SHA-256 of (seed, item id) below the fraction (the same items on every machine, whatever the
  record order; all views of an item alike)."""
  return fraction >= 1.0 or bool(
      splits.unit_hash([f"street-label:item:{int(item_id)}"], seed)[0] < fraction)


def make_example_fn(data_cfg, train: bool):
  """Returns `fn(example, rng) -> input example` (crop, resize, augment, labels).

  In training with `data.street_label_fraction` < 1, the street images of the items outside
  that fraction (`street_item_labelled`) lose their class labels (category, attributes, DCSA
  labels set to -1, unknown): the scarce street labels the curriculum-transfer poster assumes.
  They still serve as images (e.g. the anchors of triplets)."""
  out_hw = tuple(data_cfg.image_size)
  augment = augment_from_config(data_cfg.augment) if train else transforms.Augment()
  segmented = data_cfg.get("segmented", "")
  if segmented and segmented not in SEGMENT_FILL:
    raise ValueError(f"data.segmented = {segmented!r}; use one of {sorted(SEGMENT_FILL)} or ''")
  with_mask = bool(data_cfg.get("with_mask", False)) or bool(segmented)
  street_fraction = float(data_cfg.get("street_label_fraction", 1.0))
  label_seed = int(data_cfg.holdout.seed) if "holdout" in data_cfg else 0

  def fn(example: dict, rng: np.random.Generator) -> dict:
    box = transforms.crop_box(example, data_cfg.crop, data_cfg.bbox_margin)
    params = transforms.sample_augmentation(augment, rng)
    out = transforms.warp_example(example, box, out_hw, params, with_mask)
    out["image"] = transforms.jitter_colour(out["image"], augment.colour, rng)
    if segmented:
      out["segmented_image"] = segment(out["image"], out["mask"], bool(example["has_mask"]),
                                       SEGMENT_FILL[segmented])
    for name in _LABEL_FIELDS:
      out[name] = np.asarray(example[name])
    if (train and street_fraction < 1.0 and int(example["domain"]) == _STREET
        and not street_item_labelled(example["item_id"], street_fraction, label_seed)):
      for name, unknown in _CLASS_LABELS.items():
        out[name] = np.full_like(out[name], unknown)
    if not train:
      for name in _ORIGINAL_FIELDS:
        out[f"original_{name}"] = np.asarray(example[name])
      # (height, width) of the stored image: the frame of the pose machine paper's NE.
      out["original_image_size"] = np.asarray(np.shape(example["image"])[:2], np.int32)
    out["valid"] = np.bool_(True)
    return out

  return fn


def blank_example(data_cfg, spec: schema.DatasetSpec) -> dict:
  """An evaluation example of the right shapes and dtypes with nothing annotated: what
  `module.init` is traced with (no dataset needs to be on disk)."""
  h, w = data_cfg.image_size
  example = schema.empty_example(spec.num_attributes)
  example.update(image=np.zeros((h, w, 3), np.uint8), mask=np.zeros((h, w, 1), np.uint8),
                 image_id="blank")
  return make_example_fn(data_cfg, train=False)(example, np.random.default_rng(0))


def read_options(data_cfg) -> grain.ReadOptions:
  return grain.ReadOptions(num_threads=int(data_cfg.get("num_threads", 2)),
                           prefetch_buffer_size=int(data_cfg.get("prefetch", 4)))


def local_batch(global_batch: int, process_count: int) -> int:
  if global_batch % process_count:
    raise ValueError(f"batch size {global_batch} is not divisible by {process_count} processes")
  return global_batch // process_count


def train_dataset(source: Sequence[dict], data_cfg, *, global_batch: int, seed: int,
                  process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """Endless random-access dataset of this process's training batches; index = global step."""
  local = local_batch(global_batch, process_count)
  example_fn = make_example_fn(data_cfg, train=True)
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat()
  ds = ds.random_map(example_fn, seed=seed + 1).batch(local, drop_remainder=True)
  return ds[process_index::process_count]


def train_batches(source, data_cfg, *, global_batch: int, seed: int, start_step: int = 0,
                  process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """Prefetching iterator over training batches starting at `start_step`."""
  ds = train_dataset(source, data_cfg, global_batch=global_batch, seed=seed,
                     process_index=process_index, process_count=process_count)
  return iter(ds[start_step:].to_iter_dataset(read_options(data_cfg)))


def num_eval_batches(num_examples: int, global_batch: int) -> int:
  return max(1, math.ceil(num_examples / global_batch))


def eval_dataset(source: Sequence[dict], data_cfg, *, global_batch: int,
                 process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """This process's evaluation batches (no augmentation); padding carries `valid=False`."""
  local = local_batch(global_batch, process_count)
  n = len(source)
  if n == 0:
    raise ValueError("the evaluation split is empty")
  padded = num_eval_batches(n, global_batch) * global_batch
  example_fn = make_example_fn(data_cfg, train=False)
  no_rng = np.random.default_rng(0)  # evaluation draws nothing random; an rng keeps one signature

  def load(index: int) -> dict:
    out = example_fn(source[min(index, n - 1)], no_rng)
    out["valid"] = np.bool_(index < n)
    return out

  ds = grain.MapDataset.range(padded).map(load).batch(local)
  return ds[process_index::process_count]


def eval_batches(source, data_cfg, **kwargs) -> Iterator[dict]:
  return iter(eval_dataset(source, data_cfg, **kwargs).to_iter_dataset(read_options(data_cfg)))
