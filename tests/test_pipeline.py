"""grain pipelines: exactly-once evaluation, per-process sharding, resumable training order."""

import ml_collections
import numpy as np

from fashion_jax import config_base
from fashion_jax.data import pipeline, schema


class ListSource:
  """Random-access source of tiny examples whose image encodes the example index."""

  def __init__(self, n):
    self.n = n

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    ex = schema.empty_example(2)
    ex.update(image=np.full((12, 10, 3), i, np.uint8), mask=np.zeros((12, 10, 1), np.uint8),
              category=np.int32(i))
    return ex


def _data_cfg(**augment) -> ml_collections.ConfigDict:
  cfg = config_base.base_config().data
  cfg.image_size = (12, 10)
  cfg.crop = "image"
  cfg.augment.update(augment)
  cfg.num_threads = 1
  return cfg


def _ids(batch):
  return batch["category"].tolist()


def test_eval_visits_every_example_exactly_once_with_masked_padding():
  source, cfg = ListSource(10), _data_cfg()
  batches = list(pipeline.eval_batches(source, cfg, global_batch=4))
  assert len(batches) == pipeline.num_eval_batches(10, 4) == 3
  ids = np.concatenate([b["category"] for b in batches])
  valid = np.concatenate([b["valid"] for b in batches])
  assert sorted(ids[valid].tolist()) == list(range(10))
  assert valid.sum() == 10 and not valid[-2:].any()


def test_two_processes_split_each_global_batch():
  source, cfg = ListSource(10), _data_cfg()
  whole = [_ids(b) for b in pipeline.eval_batches(source, cfg, global_batch=4)]
  parts = [[_ids(b) for b in pipeline.eval_batches(source, cfg, global_batch=4, process_index=p,
                                                   process_count=2)] for p in range(2)]
  assert [a + b for a, b in zip(*parts, strict=True)] == whole
  train = [pipeline.train_dataset(source, cfg, global_batch=4, seed=3, process_index=p,
                                  process_count=2) for p in range(2)]
  single = pipeline.train_dataset(source, cfg, global_batch=4, seed=3)
  for step in range(7):
    assert _ids(train[0][step]) + _ids(train[1][step]) == _ids(single[step])


def test_training_batches_depend_only_on_seed_and_step():
  source, cfg = ListSource(10), _data_cfg(flip=True, colour=0.3)
  full = list(zip(range(8), pipeline.train_batches(source, cfg, global_batch=4, seed=1),
                  strict=False))
  resumed = pipeline.train_batches(source, cfg, global_batch=4, seed=1, start_step=5)
  for step in range(5, 8):
    again = next(resumed)
    np.testing.assert_array_equal(again["image"], full[step][1]["image"])
  # Every epoch (2 full batches of 4 out of 10 examples, remainder dropped by batching the
  # endless stream) holds distinct examples, and the order changes between epochs.
  epoch = [i for _, b in full[:2] for i in _ids(b)] + _ids(full[2][1])[:2]
  assert sorted(epoch) == list(range(10))
  other_seed = next(pipeline.train_batches(source, cfg, global_batch=4, seed=2))
  assert _ids(other_seed) != _ids(full[0][1])


def test_segmenting_keeps_the_masked_pixels_and_fills_the_rest():
  """Against numpy's where (the definition), for [H, W, 1] and [H, W] masks of any non-zero
  value; an example without a mask is left as it is."""
  from fashion_jax.data import pipeline

  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (31, 17, 3), dtype=np.uint8)
  mask = (rng.random((31, 17, 1)) > 0.4).astype(np.uint8) * rng.integers(1, 256, (31, 17, 1),
                                                                         dtype=np.uint8)
  expected = np.where(mask > 0, image, np.uint8(200))
  np.testing.assert_array_equal(pipeline.segment(image, mask, True, 200), expected)
  np.testing.assert_array_equal(pipeline.segment(image, mask[..., 0], True, 200), expected)
  assert pipeline.segment(image, mask, False, 200) is image
