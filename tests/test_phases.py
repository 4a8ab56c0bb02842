"""Training phases from the config: frozen parameters stay put; resume across a phase boundary
retraces a straight run; schedules are optax's."""

import jax
import numpy as np
import pytest

from fashion_jax import optim, run, train
from fashion_jax import phases as phases_lib

PHASES = [dict(name="stage1_only", num_steps=2, trainable="stage1_.*"),
          dict(name="joint", num_steps=2, optimizer=dict(learning_rate=1e-3))]


def _params(config, workdir):
  r = run.Run(config, workdir)
  try:
    train_state, _ = r.restore_or_init()
    return (jax.tree.map(np.asarray, train_state.params), int(train_state.step),
            r.init_variables()["params"])
  finally:
    r.close()


def test_frozen_parameters_do_not_move_and_the_next_phase_trains_them(tiny_fpm_config, tmp_path):
  tiny_fpm_config.phases = PHASES[:1]
  train.train_and_evaluate(tiny_fpm_config, str(tmp_path / "a"))
  p1, step, init = _params(tiny_fpm_config, str(tmp_path / "a"))
  assert step == 2
  np.testing.assert_array_equal(p1["stage2"]["conv1"]["kernel"], init["stage2"]["conv1"]["kernel"])
  assert not np.array_equal(p1["stage1_head"]["conv1"]["kernel"],
                            init["stage1_head"]["conv1"]["kernel"])
  tiny_fpm_config.phases = PHASES  # the same workdir, now with the joint phase: resumes at 2
  train.train_and_evaluate(tiny_fpm_config, str(tmp_path / "a"))
  p2, step, _ = _params(tiny_fpm_config, str(tmp_path / "a"))
  assert step == 4
  assert not np.array_equal(p2["stage2"]["conv1"]["kernel"], init["stage2"]["conv1"]["kernel"])
  train.train_and_evaluate(tiny_fpm_config, str(tmp_path / "b"))  # straight through both
  straight, _, _ = _params(tiny_fpm_config, str(tmp_path / "b"))
  for x, y in zip(jax.tree.leaves(p2), jax.tree.leaves(straight), strict=True):
    np.testing.assert_array_equal(x, y)


def test_step_schedule_divides_by_ten_every_n_epochs(tiny_fpm_config):
  cfg = tiny_fpm_config.optimizer
  cfg.update(dict(schedule="step", learning_rate=1e-3, decay_every_epochs=5, decay_factor=0.1))
  schedule = optim.learning_rate_schedule(cfg, steps_per_epoch=10)
  assert [float(schedule(s)) for s in (0, 49, 50, 99, 100)] == pytest.approx(
      [1e-3, 1e-3, 1e-4, 1e-4, 1e-5])


def test_phase_ranges_and_unknown_trainable_pattern(tiny_fpm_config):
  tiny_fpm_config.phases = [dict(name="a", num_epochs=2), dict(name="b", num_epochs=0.5)]
  phases = phases_lib.resolve_phases(tiny_fpm_config, steps_per_epoch=10)
  assert [(p.name, p.start_step, p.end_step) for p in phases] == [("a", 0, 20), ("b", 20, 25)]
  assert phases_lib.phase_at(phases, 19) == 0 and phases_lib.phase_at(phases, 20) == 1
  with pytest.raises(ValueError, match="matches no parameter"):
    optim.trainable_labels({"dense": {"kernel": 1}}, "backbone/.*")
  frozen = optim.trainable_labels({"a": {"w": 1}, "b": {"w": 2}}, "a/.*")
  assert frozen == {"a": {"w": "train"}, "b": {"w": "freeze"}}
