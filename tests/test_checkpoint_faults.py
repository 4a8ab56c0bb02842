"""Checkpoints that do not fit or are not there: a resume with another model is refused by the
stored metadata alone (shapes named, config fields named, nothing read, nothing printed after
the message); an empty or half-written step folder is skipped like any unreadable one."""

import os

import pytest

from fashion_jax import checkpoints, train
from fashion_jax import workdir as workdir_files


def _trained(config, workdir, steps=6):
  config.checkpoint_every_steps = 2  # checkpoints at 2, 4, 6 (the latest two kept)
  config.max_steps_per_phase = steps
  train.train_and_evaluate(config, workdir)


def test_another_models_resume_names_shapes_and_config_fields_and_reads_no_array(
    tiny_fpm_config, tmp_path, capfd, monkeypatch):
  workdir = str(tmp_path / "run")
  _trained(tiny_fpm_config, workdir)
  capfd.readouterr()
  read = []
  original = checkpoints.ocp.CheckpointManager.restore
  monkeypatch.setattr(checkpoints.ocp.CheckpointManager, "restore",
                      lambda self, *a, **k: read.append(a) or original(self, *a, **k))
  tiny_fpm_config.model.refine_width = 24  # 16 in the run: other parameter shapes
  with pytest.raises(checkpoints.CheckpointError) as refused:
    train.train_and_evaluate(tiny_fpm_config, workdir)
  message = str(refused.value)
  assert read == []  # refused from the metadata: no array was requested
  assert "step 6 holds another model or optimiser state than this config builds (params/" in (
      message)
  assert "step 4: the same" in message
  assert "The config differs from the run's config.json: model.refine_width: 16 in the run, " \
         "24 now" in message
  assert "Nothing was changed in the workdir." in message
  out, err = capfd.readouterr()
  assert "Traceback" not in out + err and "Event loop is closed" not in out + err
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "6"]


@pytest.mark.parametrize("how", ["emptied", "metadata only"])
def test_an_empty_or_half_written_latest_step_is_skipped(tiny_fpm_config, tmp_path, how):
  workdir = str(tmp_path / "run")
  _trained(tiny_fpm_config, workdir, steps=4)
  step = os.path.join(workdir, "checkpoints", "4")
  for name in os.listdir(step):
    path = os.path.join(step, name)
    if how == "emptied" or name == "default":
      (__import__("shutil").rmtree if os.path.isdir(path) else os.remove)(path)
  tiny_fpm_config.max_steps_per_phase = 6
  results = train.train_and_evaluate(tiny_fpm_config, workdir)  # resumes from step 2
  assert any("(step 6)" in method for method in results)
  moved = workdir_files.unreadable(workdir, "4")
  assert "empty or half-written" in open(os.path.join(moved, "REASON.txt")).read()


def test_after_a_divergence_the_message_says_how_to_restart_from_before_it(tiny_fpm_config,
                                                                           tmp_path):
  """The issue's trap: a checkpoint every step and an exploding learning rate. The checkpoint
  kept may hold diverging parameters; the message says so and how to get out, and
  --restart_from=0 does (the checkpoints set aside, not deleted)."""
  workdir = str(tmp_path / "run")
  tiny_fpm_config.checkpoint_every_steps = 1
  tiny_fpm_config.optimizer.learning_rate = 1e6
  tiny_fpm_config.max_steps_per_phase = 6
  with pytest.raises(train.NonFiniteLossError) as diverged:
    train.train_and_evaluate(tiny_fpm_config, workdir)
  message = str(diverged.value)
  kept = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")))
  assert kept, message  # the trap needs a checkpoint written before the blow-up
  assert f"the checkpoint of step {kept[-1]} is kept" in message
  assert "may already be diverging" in message and "--restart_from=0" in message
  tiny_fpm_config.optimizer.learning_rate = 1e-3
  with pytest.raises(ValueError, match=r"--restart_from=99: .* has no checkpoint of step 99"):
    train.train_and_evaluate(tiny_fpm_config, workdir, restart_from=99)
  results = train.train_and_evaluate(tiny_fpm_config, workdir, restart_from=0)
  assert any("(step 6)" in method for method in results)
  aside = os.listdir(os.path.join(workdir, workdir_files.SET_ASIDE))
  assert {str(s) for s in kept} <= set(aside)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [__import__("json").loads(line) for line in f]
  train_steps = [r["step"] for r in rows if r["split"] == "train"]
  assert len(train_steps) == len(set(train_steps))  # the diverged run's rows superseded


def test_a_truncated_prepared_dataset_is_named_with_the_way_out(tiny_fpm_config, tmp_path):
  import glob
  import shutil

  from fashion_jax.data import catalog

  data_dir = tmp_path / "data"
  shutil.copytree(tiny_fpm_config.data.data_dir, data_dir)
  tiny_fpm_config.data.data_dir = str(data_dir)
  (train_file,) = glob.glob(str(data_dir / "fashion_synth" / "*" / "*" / "*train*"))
  with open(train_file, "r+b") as f:
    f.truncate(os.path.getsize(train_file) // 2)
  with pytest.raises(catalog.DamagedDataError,
                     match=r"the prepared files of fashion_synth \(train split, record \d+\) "
                           r".* do not read: .*prepare the dataset again"):
    train.train_and_evaluate(tiny_fpm_config, str(tmp_path / "run"))


def test_a_signal_during_the_final_evaluation_stops_it_and_a_rerun_evaluates(
    tiny_fpm_config, tmp_path, monkeypatch):
  import signal
  import time

  from fashion_jax import evaluate

  workdir = str(tmp_path / "run")
  tiny_fpm_config.max_steps_per_phase = 2
  real = evaluate.final_evaluation

  def signalled(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would, during the evaluation
    time.sleep(5)
    return real(*args, **kwargs)

  monkeypatch.setattr(evaluate, "final_evaluation", signalled)
  before = signal.getsignal(signal.SIGTERM)
  with pytest.raises(train.Stopped, match="during the final evaluation; training is complete "
                     r"\(its checkpoint of step 2 is saved\)") as stopped:
    train.train_and_evaluate(tiny_fpm_config, workdir)
  assert stopped.value.exit_status == 143
  assert not os.path.exists(workdir_files.results(workdir))
  assert not os.path.exists(workdir_files.path(workdir, workdir_files.LOCK))  # released
  assert signal.getsignal(signal.SIGTERM) is before  # the handler is given back
  monkeypatch.setattr(evaluate, "final_evaluation", real)
  results = train.train_and_evaluate(tiny_fpm_config, workdir)  # nothing to train: evaluates
  assert any("(step 2)" in method for method in results)
  assert os.path.exists(workdir_files.results(workdir))
