"""Faults during a run and bad input: a clear error naming the file or field, a non-zero exit,
and nothing lost (config, metrics and the last good checkpoint survive).

Faults are injected in-process where possible (a folder replaced by a file, a truncated
checkpoint file, a removed workdir); signals and exit statuses need a subprocess.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import fashion_jax
from fashion_jax import checkpoints, config_check, evaluate, predict, train
from fashion_jax import run as run_lib
from fashion_jax import workdir as workdir_files
from fashion_jax.data import formats

ENV = dict(os.environ, JAX_PLATFORMS="cpu")


def _rows(workdir, name="metrics.jsonl"):
  with open(os.path.join(workdir, name)) as f:
    return [json.loads(line) for line in f]


def _checkpointed(config, every=2):
  config.checkpoint_every_steps = every  # 6 steps of 8 toy images: checkpoints at 2, 4, 6
  return config


# --- config values --------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("batch_size", 0, r"config.batch_size = 0: expected an integer >= 1"),
    ("checkpoint_every_steps", 0, r"config.checkpoint_every_steps = 0"),
    ("log_every_steps", -1, r"config.log_every_steps = -1"),
    ("num_epochs", 0.0, r"config.num_epochs = 0.0: expected a number > 0"),
    ("data.image_size", (0, 0), r"config.data.image_size = \(0, 0\): expected a pair"),
    ("optimizer.learning_rate", float("nan"), r"config.optimizer.learning_rate = nan"),
    ("data.crop", "box", r"config.data.crop = 'box': expected one of \['bbox', 'image'\]"),
])
def test_a_bad_config_value_is_named_before_anything_is_written(tiny_fpm_config, tmp_path,
                                                                 field, value, message):
  *parents, name = field.split(".")
  node = tiny_fpm_config
  for p in parents:
    node = node[p]
  node[name] = value
  workdir = tmp_path / "run"
  with pytest.raises(config_check.ConfigError, match=message):
    run_lib.Run(tiny_fpm_config, str(workdir))
  assert not workdir.exists()


def test_a_phase_override_out_of_range_is_named_with_its_phase(tiny_fpm_config):
  tiny_fpm_config.phases = [dict(name="a", num_epochs=1.0),
                            dict(name="b", num_steps=2, optimizer=dict(learning_rate=-1.0))]
  with pytest.raises(config_check.ConfigError,
                     match=r"config.phases\[1\].optimizer.learning_rate = -1.0"):
    config_check.check(tiny_fpm_config)
  tiny_fpm_config.phases = [dict(name="a", num_steps=0)]
  with pytest.raises(config_check.ConfigError, match=r"config.phases\[0\].num_steps = 0"):
    config_check.check(tiny_fpm_config)


@pytest.mark.parametrize("args, message", [
    (["--config=configs/nope.py"], "error: --config=configs/nope.py: no such file"),
    (["--config=configs/fpm.py:runlocal,runlokal"],
     "error: --config=configs/fpm.py: unknown config variant(s) ['runlokal']; allowed "
     "(comma-separated): runlocal, stages=<int>"),
    (["--config=configs/fpm.py:stages=three"], "unknown config variant(s) ['stages=three']"),
    (["--config=configs/fpm.py", "--config.batch_sise=3"],
     "error: --config.batch_sise=3: the config has no field 'batch_sise'. Did you mean "
     '"batch_size" instead of "batch_sise"?'),
])
def test_a_bad_config_on_the_command_line_is_one_paragraph_and_exit_2(args, message, tmp_path):
  out = subprocess.run([sys.executable, "-m", "fashion_jax.main", *args,
                        f"--workdir={tmp_path}/w"], capture_output=True, text=True, timeout=300,
                       env=ENV)
  assert out.returncode == 2, out.stderr[-2000:]
  assert out.stderr.startswith("error: ") and message in out.stderr, out.stderr
  assert "Traceback" not in out.stderr and "\\n" not in out.stderr
  assert len(out.stderr.strip().splitlines()) == 1  # one paragraph, nothing after it
  assert not (tmp_path / "w").exists()


def test_the_command_line_names_a_bad_field_and_exits_non_zero(tmp_path):
  base = [sys.executable, "-m", "fashion_jax.main", "--config=configs/fpm.py:runlocal"]
  unknown = subprocess.run(base + [f"--workdir={tmp_path}/a", "--config.data.foo=1"],
                           capture_output=True, text=True, timeout=300, env=ENV)
  assert unknown.returncode == 2
  assert "--config.data.foo=1: the config has no field 'foo'" in unknown.stderr
  assert "Traceback" not in unknown.stderr
  zero = subprocess.run(base + [f"--workdir={tmp_path}/b", "--config.batch_size=0"],
                        capture_output=True, text=True, timeout=300, env=ENV)
  assert zero.returncode == 1 and "Traceback" not in zero.stderr
  assert "error: config.batch_size = 0: expected an integer >= 1" in zero.stderr
  assert not (tmp_path / "b").exists()


# --- checkpoints ----------------------------------------------------------------------------

def test_a_failed_save_stops_at_once_and_keeps_the_last_checkpoint(tiny_fpm_config, tmp_path,
                                                                   monkeypatch):
  workdir = str(tmp_path / "run")
  original = checkpoints.Checkpointer.save_latest

  def save_latest(self, step, state):  # the folder turns into a file before step 4's save
    if step == 4:
      shutil.move(os.path.join(workdir, "checkpoints", "2"), str(tmp_path / "kept2"))
      shutil.rmtree(os.path.join(workdir, "checkpoints"))
      open(os.path.join(workdir, "checkpoints"), "w").close()
    return original(self, step, state)

  monkeypatch.setattr(checkpoints.Checkpointer, "save_latest", save_latest)
  with pytest.raises(checkpoints.CheckpointError,
                     match=r"could not save the checkpoint of step 4 .*NotADirectoryError"):
    train.train_and_evaluate(_checkpointed(tiny_fpm_config), workdir)
  assert os.path.exists(os.path.join(workdir, "config.json"))
  assert [r["step"] for r in _rows(workdir) if r["split"] == "train"] == [1, 2, 3, 4]


def test_a_removed_workdir_stops_the_run_with_an_error(tiny_fpm_config, tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  original = checkpoints.Checkpointer.save_latest

  def save_latest(self, step, state):
    if step == 4:
      shutil.rmtree(workdir)
    return original(self, step, state)

  monkeypatch.setattr(checkpoints.Checkpointer, "save_latest", save_latest)
  with pytest.raises(checkpoints.CheckpointError, match="was removed during the run"):
    train.train_and_evaluate(_checkpointed(tiny_fpm_config), workdir)


def test_a_state_that_diverged_with_a_finite_loss_is_never_checkpointed(tiny_fpm_config,
                                                                         tmp_path, monkeypatch):
  original, corrupt_at = run_lib.Run.train_step, [4]

  def train_step(self, index, params, batch_stats):  # NaN parameters, the step's loss finite
    step_fn = original(self, index, params, batch_stats)

    def step(state, batch):
      state, metrics = step_fn(state, batch)
      if int(state.step) == corrupt_at[0]:
        state = state.replace(params=jax.tree.map(lambda x: x * jnp.nan, state.params))
      return state, metrics

    return step

  monkeypatch.setattr(run_lib.Run, "train_step", train_step)
  workdir = str(tmp_path / "run")
  with pytest.raises(train.NonFiniteLossError,
                     match=r"state after step 4 holds NaN .* the checkpoint of step 2 is kept"):
    train.train_and_evaluate(_checkpointed(tiny_fpm_config), workdir)
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["2"]
  corrupt_at[0] = 2
  with pytest.raises(train.NonFiniteLossError, match="no checkpoint was saved before it"):
    train.train_and_evaluate(tiny_fpm_config, str(tmp_path / "fresh"))


def _damage(directory, how):
  """Truncates the largest file of a checkpoint, or empties its metadata files."""
  files = [os.path.join(d, f) for d, _, fs in os.walk(directory) for f in fs]
  if how == "truncate":
    path = max(files, key=os.path.getsize)
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
  else:
    for path in files:
      if "metadata" in os.path.basename(path).lower():
        open(path, "w").close()


@pytest.mark.parametrize("how", ["truncate", "empty_metadata"])
def test_resume_falls_back_to_the_newest_checkpoint_that_restores(tiny_fpm_config, tmp_path,
                                                                  how):
  workdir = str(tmp_path / "run")
  first = train.train_and_evaluate(_checkpointed(tiny_fpm_config), workdir)
  _damage(os.path.join(workdir, "checkpoints", "6"), how)
  again = train.train_and_evaluate(tiny_fpm_config, workdir)  # resumes at 4, trains 5 and 6
  moved = workdir_files.unreadable(workdir, "6")
  assert os.path.isdir(moved)
  assert open(os.path.join(moved, "REASON.txt")).read().strip()
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "6"]
  assert again == first  # resume is exact: the same step 6, so the same results
  steps = [(r["step"], r["split"]) for r in _rows(workdir)]
  assert len(steps) == len(set(steps))  # the replayed steps' rows replaced the old ones
  superseded = [r["step"] for r in _rows(workdir, "metrics.superseded.jsonl")]
  assert sorted(superseded) == [5, 6, 6]  # train rows of 5 and 6, eval row of 6


def test_when_no_checkpoint_restores_nothing_is_moved(tiny_fpm_config, tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(_checkpointed(tiny_fpm_config), workdir)
  for step in ("4", "6"):
    _damage(os.path.join(workdir, "checkpoints", step), "truncate")
  with pytest.raises(checkpoints.CheckpointError, match=r"no checkpoint .* restores \(step 6"):
    train.train_and_evaluate(tiny_fpm_config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "6"]
  assert not os.path.exists(workdir_files.path(workdir, workdir_files.UNREADABLE))


def test_an_unreadable_best_checkpoint_falls_back_to_the_latest(tiny_fpm_config, tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(_checkpointed(tiny_fpm_config), workdir)
  best = os.path.join(workdir, "best")
  _damage(os.path.join(best, os.listdir(best)[0]), "truncate")
  results = evaluate.evaluate_workdir(workdir)
  assert "fpm (step 6, latest: the best checkpoint does not restore)" in results
  model = fashion_jax.load(workdir)  # also falls back, with a warning, and says so
  (result,) = model.predict([np.zeros((40, 30, 3), np.uint8)])
  assert len(result["keypoints"]) == 24 and model.checkpoint == "latest (step 6)"


def test_eval_and_load_skip_an_unreadable_latest_state_and_move_nothing(tiny_fpm_config,
                                                                         tmp_path):
  """Without a usable best checkpoint, the newest train state that restores is used (step 4
  when step 6 is damaged), and evaluation leaves the workdir's checkpoints where they are."""
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(_checkpointed(tiny_fpm_config), workdir)
  best = os.path.join(workdir, "best")
  _damage(os.path.join(best, os.listdir(best)[0]), "truncate")
  _damage(os.path.join(workdir, "checkpoints", "6"), "truncate")
  results = evaluate.evaluate_workdir(workdir)
  assert "fpm (step 4, latest: the best checkpoint does not restore)" in results
  assert fashion_jax.load(workdir).checkpoint == "latest (step 4)"
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "6"]
  assert not os.path.exists(workdir_files.path(workdir, workdir_files.UNREADABLE))


KILL_AT_COMMIT = """
import importlib.util, os, sys
from fashion_jax import train
rename = os.rename
def dying_rename(src, dst, *args, **kwargs):  # orbax commits a checkpoint by renaming its folder
  if "orbax-checkpoint-tmp" in str(src) and os.path.basename(str(dst)) == "4":
    os._exit(9)
  return rename(src, dst, *args, **kwargs)
os.rename = dying_rename
spec = importlib.util.spec_from_file_location("toy", sys.argv[1])
toy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(toy)
config = toy.get_config("runlocal")
config.checkpoint_every_steps, config.max_steps_per_phase, config.num_epochs = 2, 0, 1.0
train.train_and_evaluate(config, sys.argv[2])
"""


def test_a_kill_between_writing_a_checkpoint_and_committing_it_loses_nothing(toy_config_file,
                                                                            tmp_path):
  workdir = tmp_path / "run"
  killed = subprocess.run([sys.executable, "-c", KILL_AT_COMMIT, toy_config_file, str(workdir)],
                          env=ENV, capture_output=True, text=True, timeout=300)
  assert killed.returncode == 9, killed.stderr[-3000:]
  left = sorted(os.listdir(workdir / "checkpoints"))
  assert left[0] == "2" and any("orbax-checkpoint-tmp" in name for name in left), left
  assert (workdir / "config.json").exists()
  done = subprocess.run([sys.executable, "-c", KILL_AT_COMMIT.replace('== "4"', '== "-"'),
                         toy_config_file, str(workdir)],
                        env=ENV, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert {"4", "6"} <= set(os.listdir(workdir / "checkpoints"))
  steps = [(r["step"], r["split"]) for r in _rows(str(workdir))]
  assert len(steps) == len(set(steps)) and (6, "eval") in steps


# --- signals ---------------------------------------------------------------------------------

def test_sigterm_saves_then_exits_with_its_own_status_and_resume_logs_each_step_once(
    toy_config_file, tmp_path):
  workdir = tmp_path / "run"
  command = [sys.executable, "-m", "fashion_jax.main", f"--config={toy_config_file}:runlocal",
             f"--workdir={workdir}", "--config.max_steps_per_phase=0", "--config.num_epochs=40",
             "--config.log_every_steps=1", "--config.checkpoint_every_steps=1000"]
  proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
  metrics, deadline = workdir / "metrics.jsonl", time.time() + 300
  while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size):
    time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
  assert "rerun the same command to resume" in stderr
  stopped = int(os.listdir(workdir / "checkpoints")[0])
  assert 0 < stopped < 240
  done = subprocess.run(command + [f"--config.max_steps_per_phase={stopped + 2}"], env=ENV,
                        capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  steps = [(r["step"], r["split"]) for r in _rows(workdir)]
  assert len(steps) == len(set(steps))


# --- predict on bad images -------------------------------------------------------------------

def _png_declaring(path, width, height):
  """A 1x1 PNG whose header declares width x height (the pixel data stays 1x1)."""
  Image.new("RGB", (1, 1)).save(path)
  data = bytearray(open(path, "rb").read())
  ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
  data[ihdr:ihdr + 8] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
  crc = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13]))
  data[ihdr + 13:ihdr + 17] = crc.to_bytes(4, "big")
  open(path, "wb").write(bytes(data))


def test_images_that_cannot_be_used_are_named_with_the_reason(tmp_path):
  good = tmp_path / "good.jpg"
  Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(good, quality=95)
  assert formats.read_rgb(good).shape == (40, 30, 3)
  (tmp_path / "empty.jpg").write_bytes(b"")
  (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[:200])
  _png_declaring(tmp_path / "wide.png", 10000, 10000)
  _png_declaring(tmp_path / "bomb.png", 60000, 60000)
  for name, reason in (("empty.jpg", "not in a known image format"),
                       ("cut.jpg", "truncated"), ("wide.png", "10000x10000 = 100000000 pixels"),
                       ("bomb.png", "too large")):
    with pytest.raises(formats.ImageError, match=f"{name}: .*{reason}"):
      formats.read_rgb(tmp_path / name, max_pixels=50_000_000)


def test_a_boxes_file_is_checked_row_by_row(tmp_path):
  path = tmp_path / "boxes.csv"
  path.write_text("file,x1,y1,x2,y2\na.jpg,1,2,30,40\nb.jpg,30,2,10,40\n")
  with pytest.raises(ValueError, match=r"boxes.csv:3: box .* x2 > x1"):
    predict.read_boxes(str(path))
  path.write_text("a.jpg,1,2,30,40\na.jpg,1,2,31,40\n")
  with pytest.raises(ValueError, match=r"boxes.csv:2: a second box for a.jpg \(first on line 1"):
    predict.read_boxes(str(path))
  path.write_text("file,x1,y1,x2,y2\n")
  with pytest.raises(ValueError, match="no boxes"):
    predict.read_boxes(str(path))


def test_predict_writes_every_good_image_and_lists_the_bad_ones(tiny_fpm_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_fpm_config.max_steps_per_phase = 1
  train.train_and_evaluate(tiny_fpm_config, workdir)
  images = tmp_path / "images"
  images.mkdir()
  for i in range(3):
    Image.fromarray(np.full((40, 30, 3), 60 * i, np.uint8)).save(images / f"ok{i}.jpg")
  (images / "zero.jpg").write_bytes(b"")
  (images / "cut.jpg").write_bytes((images / "ok1.jpg").read_bytes()[:150])
  _png_declaring(images / "huge.png", 20000, 20000)
  out = tmp_path / "out"
  res = subprocess.run([sys.executable, "-m", "fashion_jax.predict", f"--workdir={workdir}",
                        f"--images={images}/*", f"--out={out}", "--batch_size=2"],
                       capture_output=True, text=True, timeout=300, env=ENV)
  assert res.returncode == predict.SOME_SKIPPED, res.stderr[-3000:]
  results = json.loads((out / "predictions.json").read_text())
  assert sorted(os.path.basename(p) for p in results) == ["ok0.jpg", "ok1.jpg", "ok2.jpg"]
  skipped = {os.path.basename(p): r for p, r in
             json.loads((out / "skipped.json").read_text()).items()}
  assert sorted(skipped) == ["cut.jpg", "huge.png", "zero.jpg"]
  assert "truncated" in skipped["cut.jpg"] and "pixels is over the limit" in skipped["huge.png"]
  boxes = tmp_path / "boxes.csv"
  boxes.write_text("ok0.jpg,1,1,20,30\n")
  refused = subprocess.run([sys.executable, "-m", "fashion_jax.predict", f"--workdir={workdir}",
                            f"--images={images}/ok*", f"--out={out}", f"--boxes={boxes}"],
                           capture_output=True, text=True, timeout=300, env=ENV)
  assert refused.returncode != 0 and "boxes would be ignored" in refused.stderr
