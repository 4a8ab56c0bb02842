"""tools/bench_step as a user runs it: the config's batch and input, a step time, FLOPs, and the
`--without` comparison; a bad `--without` is refused before anything is timed."""

import os
import subprocess
import sys

import pytest
from absl import app

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench(*args):
  return subprocess.run([sys.executable, "-m", "tools.bench_step", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=600)


def test_reports_the_configs_step_and_the_part_a_switch_removes(toy_config_file):
  out = _bench(f"--config={toy_config_file}", "--steps=2", "--without=num_stages=1")
  assert out.returncode == 0, out.stderr[-2000:]
  text = out.stdout
  assert "system fpm" in text and "batch 8  input (32, 32)" in text
  flops = float(text.split("FLOPs/step ")[1].split(" G")[0])
  assert flops > 0
  line = next(x for x in text.splitlines() if x.startswith("without model.num_stages=1:"))
  assert "step median" in line and ("of the step" in line or "not measurable" in line)


def test_a_without_field_the_model_lacks_is_refused_at_once(toy_config_file):
  out = _bench(f"--config={toy_config_file}", "--without=num_stagez=1")
  assert out.returncode != 0
  assert "config.model has no field 'num_stagez'" in out.stderr
  assert "step median" not in out.stdout


def test_the_fake_batch_follows_the_configs_dataset_and_each_flag_its_own_head(tmp_path):
  from configs import landmark_attention, mtct
  from fashion_jax.data.synth import render
  from tools import bench_step

  xdomain = bench_step.benchmark_spec(mtct.get_config("runlocal"))
  assert xdomain == render.ATTRIBUTE_SETS["xdomain"].spec  # not the DeepFashion-style one
  lda = landmark_attention.get_config("runlocal")
  wide = bench_step.benchmark_spec(lda, num_attributes=1000)
  assert wide.num_attributes == 1000
  assert wide.category_names == render.ATTRIBUTE_SETS["deepfashion"].spec.category_names
  lda.data.data_dir = str(tmp_path)  # the paper's DeepFashion, not prepared there
  with pytest.raises(app.UsageError, match="give --num_categories and --num_attributes"):
    bench_step.benchmark_spec(lda)
  both = bench_step.benchmark_spec(lda, num_categories=50, num_attributes=1000)
  assert (len(both.category_names), both.num_attributes) == (50, 1000)
