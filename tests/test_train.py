"""The generic trainer: sharding equivalence, exact resume, NaN stop, evaluation of a workdir."""

import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from fashion_jax import checkpoints, evaluate, run, train


def _train_losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return {r["step"]: r["loss"] for r in rows if r["split"] == "train"}


def _final_params(config, workdir):
  r = run.Run(config, workdir)
  try:
    train_state, _ = r.restore_or_init()
    return jax.tree.map(np.asarray, train_state.params), int(train_state.step)
  finally:
    r.close()


def test_one_device_and_eight_devices_agree(tiny_fpm_config, tmp_path):
  assert len(jax.devices()) == 8
  tiny_fpm_config.max_steps_per_phase = 3
  params = {}
  for n in (1, 8):
    tiny_fpm_config.num_devices = n
    train.train_and_evaluate(tiny_fpm_config, str(tmp_path / f"d{n}"))
    params[n], step = _final_params(tiny_fpm_config, str(tmp_path / f"d{n}"))
    assert step == 3
  l1, l8 = _train_losses(str(tmp_path / "d1")), _train_losses(str(tmp_path / "d8"))
  assert list(l1) == [1, 2, 3]
  np.testing.assert_allclose([l8[s] for s in l1], list(l1.values()), rtol=1e-5)
  for a, b in zip(jax.tree.leaves(params[1]), jax.tree.leaves(params[8]), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_resume_continues_the_exact_trajectory(tiny_fpm_config, tmp_path):
  tiny_fpm_config.max_steps_per_phase = 5
  straight = str(tmp_path / "straight")
  train.train_and_evaluate(tiny_fpm_config, straight)
  resumed = str(tmp_path / "resumed")
  tiny_fpm_config.max_steps_per_phase = 2  # "interrupted" after step 2 (checkpointed)
  train.train_and_evaluate(tiny_fpm_config, resumed)
  tiny_fpm_config.max_steps_per_phase = 5
  train.train_and_evaluate(tiny_fpm_config, resumed)  # same command again: resumes at step 2
  a, step_a = _final_params(tiny_fpm_config, straight)
  b, step_b = _final_params(tiny_fpm_config, resumed)
  assert step_a == step_b == 5
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)
  assert _train_losses(straight) == _train_losses(resumed)


def test_non_finite_loss_stops_naming_step_and_term(tiny_fpm_config, tmp_path):
  tiny_fpm_config.optimizer.learning_rate = 1e30
  with pytest.raises(train.NonFiniteLossError, match=r"step [0-9]+: loss"):
    train.train_and_evaluate(tiny_fpm_config, str(tmp_path / "nan"))


def test_stop_flag_turns_sigterm_into_a_request(monkeypatch):
  import signal

  before = signal.getsignal(signal.SIGTERM)
  with train._StopFlag() as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.requested
  assert signal.getsignal(signal.SIGTERM) is before


def test_short_training_learns_and_workdir_evaluates(tiny_fpm_config, tmp_path):
  tiny_fpm_config.num_epochs = 12.0  # 72 steps of 8 toy images
  tiny_fpm_config.optimizer.learning_rate = 3e-3
  tiny_fpm_config.eval.baselines = ("untrained",)
  workdir = str(tmp_path / "fpm")
  results = train.train_and_evaluate(tiny_fpm_config, workdir)
  trained, untrained = (r["fashionai_ne"]["mean"] for r in results.values())
  assert trained < 0.8 * untrained, results
  losses = _train_losses(workdir)
  assert np.mean([losses[s] for s in range(63, 73)]) < 0.5 * losses[1]
  again = evaluate.evaluate_workdir(workdir)  # reads config.json, restores the best checkpoint
  assert list(again) == list(results)
  for a, b in zip(again.values(), results.values(), strict=True):
    assert a["fashionai_ne"]["mean"] == pytest.approx(b["fashionai_ne"]["mean"])
  assert os.path.exists(os.path.join(workdir, "results_test.json"))
  assert os.path.isdir(os.path.join(workdir, "tensorboard"))


def test_command_line_trains_then_evaluates(synth_data_dir, tmp_path):
  workdir = str(tmp_path / "cli")
  common = [sys.executable, "-m", "fashion_jax.main", f"--workdir={workdir}"]
  overrides = ["--config.data.name=fashion_synth", f"--config.data.data_dir={synth_data_dir}",
               "--config.data.image_size=(32,32)",
               "--config.data.synth.image_size=64",
               "--config.data.synth.num_train=48",
               "--config.data.synth.num_validation=16",
               "--config.data.synth.num_test=16", "--config.data.synth.views_per_item=1",
               "--config.max_steps_per_phase=2",
               "--config.batch_size=8", "--config.num_devices=1", "--config.model.num_stages=2",
               "--config.progress=False", "--config.eval.baselines=()"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run(common + ["--config=configs/fpm.py:runlocal"] + overrides, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "FashionAI challenge NE" in out.stdout and "The paper's NE" in out.stdout
  assert "fpm (step 2)" in out.stdout
  out = subprocess.run(common + ["--mode=eval"], env=env, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "fpm (step 2)" in out.stdout
  first = json.load(open(os.path.join(workdir, "results_test.json")))

  # --mode=eval takes overrides of what is evaluated: another category subset, another batch.
  out = subprocess.run(common + ["--mode=eval", "--config.data.categories=('dress',)",
                                 "--config.batch_size=4"],
                       env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  subset = json.load(open(os.path.join(workdir, "results_test@data.categories=dress.json")))
  assert subset["data"]["num_examples"] < first["data"]["num_examples"]
  assert json.load(open(os.path.join(workdir, "results_test.json"))) == first  # untouched
  # ... but never the model: one paragraph, exit 2, nothing written.
  out = subprocess.run(common + ["--mode=eval", "--config.model.num_stages=3"], env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 2 and "--config.model.num_stages: --mode=eval evaluates the run's " \
      "model as trained" in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


def test_a_failed_resume_keeps_the_runs_config(tiny_fpm_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_fpm_config.max_steps_per_phase = 2
  train.train_and_evaluate(tiny_fpm_config, workdir)
  before = open(os.path.join(workdir, "config.json")).read()
  tiny_fpm_config.model.refine_width = 24  # other parameter shapes: the checkpoint cannot fit
  tiny_fpm_config.max_steps_per_phase = 4
  with pytest.raises(checkpoints.CheckpointError, match="no checkpoint in .* restores"):
    train.train_and_evaluate(tiny_fpm_config, workdir)
  assert open(os.path.join(workdir, "config.json")).read() == before
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2"]  # nothing moved
  assert '"refine_width": 16' in before


def test_a_state_with_nan_is_not_finite(tiny_fpm_config, tmp_path):
  r = run.Run(tiny_fpm_config, str(tmp_path / "w"))
  try:
    good, _ = r.restore_or_init()
  finally:
    r.close()
  assert train.finite_state(good)
  params = jax.tree.map(lambda x: x, good.params)
  params["stage1_head"]["conv1"]["bias"] = params["stage1_head"]["conv1"]["bias"].at[0].set(
      np.nan)
  assert not train.finite_state(good.replace(params=params))


def test_results_with_other_numbers_are_kept_not_overwritten(tmp_path):
  from fashion_jax import workdir as workdir_files

  path = str(tmp_path / "results_test.json")
  assert workdir_files.keep_earlier(path, "a") is None  # nothing there yet
  open(path, "w").write("a")
  assert workdir_files.keep_earlier(path, "a") is None  # the same numbers: nothing to keep
  assert workdir_files.keep_earlier(path, "b") == str(tmp_path / "results_test.1.json")
  open(path, "w").write("b")
  assert workdir_files.keep_earlier(path, "c") == str(tmp_path / "results_test.2.json")
  assert [open(tmp_path / f"results_test.{n}.json").read() for n in (1, 2)] == ["a", "b"]


def test_without_a_terminal_training_logs_step_loss_speed_and_eta(tiny_fpm_config, tmp_path,
                                                                   caplog):
  import logging
  import re

  tiny_fpm_config.progress = False
  tiny_fpm_config.log_every_steps = 2
  tiny_fpm_config.max_steps_per_phase = 4
  caplog.set_level(logging.INFO)
  train.train_and_evaluate(tiny_fpm_config, str(tmp_path / "run"))
  lines = [r.getMessage() for r in caplog.records if re.search(r": step \d+/\d+ ", r.getMessage())]
  steps = [int(re.search(r"step (\d+)/", line).group(1)) for line in lines]
  assert steps == [2, 4], lines
  assert all(re.search(r"loss [0-9.e+-]+, [0-9.]+ images/s, ETA \d+:\d\d:\d\d", line)
             for line in lines), lines
  assert "step 4/4 (100%)" in lines[-1]


def _tensorboard_view(logdir):
  """[(tag, step, value)] as TensorBoard plots them: the event files read in order (a step
  logged twice is plotted twice), and a session START at step S hiding the events of steps
  >= S read before it (TensorBoard's purge rule)."""
  import glob
  import struct

  from tensorboardX.proto import event_pb2

  shown = []
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    data = open(path, "rb").read()
    at = 0
    while at < len(data):
      (length,) = struct.unpack("<Q", data[at:at + 8])
      event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
      at += 12 + length + 4
      if event.HasField("session_log") and event.session_log.status == 1:  # START
        shown = [point for point in shown if point[1] < event.step]
      shown += [(value.tag, event.step, value.simple_value) for value in event.summary.value]
  return shown


def test_tensorboard_shows_each_replayed_step_once_after_a_resume(tmp_path):
  from fashion_jax import writers

  first = writers.MetricWriter(str(tmp_path))
  for step in range(1, 6):
    first.write(step, "train", {"loss": float(step)})
  first.close()
  time.sleep(1.1)  # event files are named by the second they were opened
  resumed = writers.MetricWriter(str(tmp_path))
  resumed.supersede_after(3)  # the run resumes from the checkpoint of step 3
  for step in range(4, 7):
    resumed.write(step, "train", {"loss": 10.0 * step})
  resumed.close()
  view = _tensorboard_view(str(tmp_path / "tensorboard"))
  assert view == [("train/loss", 1, 1.0), ("train/loss", 2, 2.0), ("train/loss", 3, 3.0),
                  ("train/loss", 4, 40.0), ("train/loss", 5, 50.0), ("train/loss", 6, 60.0)]
