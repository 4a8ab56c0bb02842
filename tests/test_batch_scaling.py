"""`config_base.scale_batch_size`: the linear scaling rule on the paper configs, by hand. Every
learning rate (the base one and each phase's override) moves with the batch; nothing else does."""

import copy

import pytest

from configs import mtct, two_stream
from fashion_jax import config_base, config_check
from fashion_jax import phases as phases_lib


def _snapshot(config) -> dict:
  # A deep copy: the dicts in `config.phases` must not change under the snapshot's feet.
  return copy.deepcopy(config.to_dict())


def _drop(tree: dict, *paths: str) -> dict:
  """`tree` without the '.'-paths `paths` (a digit selects an item of a list)."""
  tree = copy.deepcopy(tree)
  for path in paths:
    *parents, last = path.split(".")
    node = tree
    for part in parents:
      node = node[int(part)] if part.isdigit() else node[part]
    del node[last]
  return tree


def test_two_stream_8_cores_scales_the_learning_rate_8_times_and_nothing_else():
  c = two_stream.get_config()
  before = _snapshot(c)
  assert (c.batch_size, c.optimizer.learning_rate) == (32, 1e-3)
  config_base.scale_batch_size(c, 256)
  assert c.batch_size == 256
  assert c.optimizer.learning_rate == 0.008  # 1e-3 * 256 / 32; a power of two: exact
  assert c.eval_batch_size == 0  # still "same as batch_size"
  after = _snapshot(c)
  assert _drop(after, "batch_size", "optimizer.learning_rate") == _drop(
      before, "batch_size", "optimizer.learning_rate")
  assert after["phases"] == before["phases"]  # its phases override no optimizer field


def test_mtct_phase_overrides_scale_with_the_base_rate():
  c = mtct.get_config()
  assert (c.batch_size, c.optimizer.learning_rate) == (64, 1e-4)
  assert [p["name"] for p in c.phases] == ["shop", "street"]
  c.phases[1]["optimizer"] = dict(learning_rate=1e-5, schedule="step", decay_factor=0.5)
  before = _snapshot(c)
  config_base.scale_batch_size(c, 512)  # x8
  assert c.batch_size == 512
  assert c.optimizer.learning_rate == 8e-4
  assert c.phases[1]["optimizer"] == dict(learning_rate=8e-5, schedule="step", decay_factor=0.5)
  assert "optimizer" not in c.phases[0]
  changed = ("batch_size", "optimizer.learning_rate", "phases.1.optimizer.learning_rate")
  assert _drop(_snapshot(c), *changed) == _drop(before, *changed)
  # What the trainer reads: each phase's merged optimizer, checked as a run's config is.
  config_check.check(c)
  resolved = phases_lib.resolve_phases(c, steps_per_epoch=10)
  assert [p.optimizer.learning_rate for p in resolved] == [8e-4, 8e-5]
  assert resolved[1].optimizer.decay_factor == 0.5


def test_factors_that_are_not_powers_of_two_and_scaling_down():
  c = mtct.get_config("runlocal")
  assert (c.batch_size, c.optimizer.learning_rate) == (32, 1e-3)
  c.phases[0]["optimizer"] = dict(learning_rate=3e-4)
  config_base.scale_batch_size(c, 48)  # x1.5
  assert c.optimizer.learning_rate == pytest.approx(1.5e-3, rel=1e-12)
  assert c.phases[0]["optimizer"]["learning_rate"] == pytest.approx(4.5e-4, rel=1e-12)
  config_base.scale_batch_size(c, 12)  # x1/4: down as well as up
  assert c.batch_size == 12
  assert c.optimizer.learning_rate == pytest.approx(3.75e-4, rel=1e-12)  # 1e-3 * 12 / 32
  assert c.phases[0]["optimizer"]["learning_rate"] == pytest.approx(1.125e-4, rel=1e-12)
  config_base.scale_batch_size(c, 32)  # back: the rates it started with
  assert c.optimizer.learning_rate == pytest.approx(1e-3, rel=1e-12)
  assert c.phases[0]["optimizer"]["learning_rate"] == pytest.approx(3e-4, rel=1e-12)


def test_an_optimizer_dict_two_phases_share_scales_once_and_stays_as_it_was():
  c = two_stream.get_config()
  shared = dict(learning_rate=2e-4)
  for phase in c.phases:
    phase["optimizer"] = shared
  config_base.scale_batch_size(c, 64)  # x2
  assert [p["optimizer"]["learning_rate"] for p in c.phases] == [4e-4, 4e-4]
  assert shared == dict(learning_rate=2e-4)


def test_the_same_batch_changes_nothing():
  c = two_stream.get_config()
  c.phases[1]["optimizer"] = dict(learning_rate=1e-4)
  before = _snapshot(c)
  config_base.scale_batch_size(c, 32)
  assert _snapshot(c) == before


@pytest.mark.parametrize("batch_size", [0, -8, 2.0, True])
def test_a_batch_below_one_or_not_an_integer_is_refused_and_nothing_changes(batch_size):
  c = two_stream.get_config()
  before = _snapshot(c)
  with pytest.raises(ValueError, match="batch_size"):
    config_base.scale_batch_size(c, batch_size)
  assert _snapshot(c) == before
