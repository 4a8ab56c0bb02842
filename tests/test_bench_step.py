"""tools/bench_step as a user runs it: the config's batch and input, a step time, FLOPs, and the
`--without` comparison; a bad `--without` is refused before anything is timed."""

import os
import subprocess
import sys

import pytest

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
  from fashion_jax.tools import benchmarking as bench_step

  xdomain = bench_step.benchmark_spec(mtct.get_config("runlocal"))
  assert xdomain == render.ATTRIBUTE_SETS["xdomain"].spec  # not the DeepFashion-style one
  lda = landmark_attention.get_config("runlocal")
  wide = bench_step.benchmark_spec(lda, num_attributes=1000)
  assert wide.num_attributes == 1000
  assert wide.category_names == render.ATTRIBUTE_SETS["deepfashion"].spec.category_names
  lda.data.data_dir = str(tmp_path)  # the paper's DeepFashion, not prepared there
  with pytest.raises(bench_step.SpecUnknown, match="give --num_categories and --num_attributes"):
    bench_step.benchmark_spec(lda)
  both = bench_step.benchmark_spec(lda, num_categories=50, num_attributes=1000)
  assert (len(both.category_names), both.num_attributes) == (50, 1000)


def test_the_step_report_has_every_number_a_benchmark_asks_for(toy_config_file, tmp_path):
  """Compile cold and cached, rounds, images/s, FLOPs, memory, and the pipeline's rate against
  the step's demand, printed and in the JSON file."""
  import json

  out = _bench(f"--config={toy_config_file}", "--steps=2", "--rounds=2",
               "--pipeline_batches=2", f"--json={tmp_path / 'row.json'}")
  assert out.returncode == 0, out.stderr[-2000:]
  row = json.loads((tmp_path / "row.json").read_text())
  assert len(row["rounds"]) == 2 and all(len(r) == 2 for r in row["rounds"])
  assert row["step_min_s"] <= row["step_s"] <= row["step_max_s"]
  assert row["images_per_s"] == pytest.approx(8 / row["step_s"])
  assert row["compile_cold_s"] > 0 and row["compile_cached_s"] > 0
  # The donated state: arguments alias outputs, so the peak is below arguments + outputs + temps.
  assert 0 < row["peak_memory_bytes"]
  assert row["pipeline_images_per_s"] > 0 and row["pipeline_workers"] == 1
  text = out.stdout
  assert "compile cold" in text and "from the persistent cache" in text
  assert "round medians" in text and "input pipeline" in text and "step's demand" in text


def test_the_longest_phase_is_benchmarked_unless_one_is_named():
  from configs import mtct, two_stream
  from fashion_jax.tools import benchmarking

  assert benchmarking.benchmark_phase(two_stream.get_config()).name == "joint"
  assert benchmarking.benchmark_phase(two_stream.get_config(), 0).name == "landmark_stream"
  with pytest.raises(ValueError, match="has 2 phases"):
    benchmarking.benchmark_phase(mtct.get_config(), 5)


def test_peak_memory_counts_donated_outputs_once():
  from types import SimpleNamespace

  from fashion_jax.tools import benchmarking

  stats = SimpleNamespace(argument_size_in_bytes=100, output_size_in_bytes=90,
                          alias_size_in_bytes=80, temp_size_in_bytes=30)
  assert benchmarking.peak_memory_bytes(stats) == 100 + (90 - 80) + 30
  assert benchmarking.peak_memory_bytes(None) is None


def test_every_fresh_compilation_cache_is_the_one_written_to():
  # JAX opens its persistent cache once; a second benchmark in the same process (bench_systems,
  # compare_torch) must still write to its own fresh folder, not the first one's deleted one.
  import jax
  import jax.numpy as jnp

  from fashion_jax.tools import benchmarking

  for scale in (2.0, 3.0):
    program = jax.jit(lambda x, scale=scale: jnp.sin(x) * scale)
    with benchmarking.fresh_compilation_cache() as folder:
      program.lower(jnp.ones(3)).compile()
      assert os.listdir(folder), f"nothing cached in the fresh folder for scale {scale}"


def test_every_paper_config_has_a_benchmark_batch():
  """bench_systems' default list: each paper config resolves its heads and its fake batch
  without its data (nothing compiled here)."""
  import importlib

  from fashion_jax import systems
  from fashion_jax.tools import benchmarking

  for name, (path, heads) in benchmarking.SYSTEMS.items():
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    config = module.get_config()
    sizes = {h.split("=")[0].lstrip("-"): int(h.split("=")[1]) for h in heads}
    spec = benchmarking.benchmark_spec(config, **sizes)
    system = systems.get_system(config.system)
    phase = benchmarking.benchmark_phase(config)
    batch = benchmarking.fake_batch(phase.data, system, spec, 2)
    assert batch["image"].shape == (2, *config.data.image_size, 3), name
    if sizes:
      assert (spec.num_categories, spec.num_attributes) == (50, 1000)


def test_bench_systems_writes_one_table_with_every_column_and_an_error_row(toy_config_file,
                                                                            tmp_path):
  import json

  out = subprocess.run(
      [sys.executable, "-m", "tools.bench_systems", f"--out={tmp_path}",
       f"--systems=toy={toy_config_file},broken={tmp_path / 'missing.py'}", "--rounds=2",
       "--steps=1", "--pipeline_batches=2"], cwd=REPO, capture_output=True, text=True,
      timeout=600)
  assert out.returncode == 1, out.stderr[-2000:]  # one system failed
  rows = json.loads((tmp_path / "benchmarks.json").read_text())
  assert [r["system"] for r in rows] == ["toy", "broken"]
  assert "error" in rows[1] and "error" not in rows[0]
  table = (tmp_path / "benchmarks.md").read_text()
  from fashion_jax.tools import benchmarking

  header = next(line for line in table.splitlines() if line.startswith("| system"))
  assert header == "| " + " | ".join(benchmarking.COLUMNS) + " |"
  toy = next(line for line in table.splitlines() if line.startswith("| toy"))
  cells = [c.strip() for c in toy.strip("|").split("|")]
  assert len(cells) == len(benchmarking.COLUMNS)
  blank = [col for col, c in zip(benchmarking.COLUMNS, cells, strict=True) if not c]
  assert blank == ["MFU"]  # no peak is known for a CPU; every other column is measured
  assert "# Step benchmarks: cpu x1 (cpu)" in table


def test_compare_torch_times_both_sides_and_writes_the_table(tmp_path):
  pytest.importorskip("torch", reason="torch comes with requirements-test.txt")
  import json

  out = subprocess.run(
      [sys.executable, "-m", "tools.compare_torch", "--models=fpm@256", "--rounds=1",
       "--scale=0.125", "--batch=3", f"--out={tmp_path}"], cwd=REPO, capture_output=True,
      text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  (row,) = json.loads((tmp_path / "compare_torch.json").read_text())
  assert (row["batch"], row["input"]) == (3, 32)  # --batch, not the paper's 5; 256 * 0.125
  assert row["jax_s"] > 0 and row["torch_s"] > 0
  assert row["ratio"] == pytest.approx(row["jax_s"] / row["torch_s"])
  assert "| fpm@256 | 3 | 32x32 |" in (tmp_path / "compare_torch.md").read_text()


def test_compare_torch_worker_failure_names_the_side():
  # Each side runs in a worker process; its error must reach the parent with the model and
  # framework named, not as a hang or a bare EOFError. (A subprocess: importing the tool here
  # would define its flags beside other tools' in this test process.)
  code = "from tools import compare_torch; compare_torch.side_worker('jax', 'nope', 1.0)"
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode != 0
  assert "RuntimeError: nope (JAX): UsageError: --models: unknown 'nope'" in out.stderr


def test_compare_torch_rejects_an_unknown_model_before_any_work():
  out = subprocess.run([sys.executable, "-m", "tools.compare_torch", "--models=vgg16,resnet5"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert "unknown resnet5" in out.stderr and "building" not in out.stdout


def test_a_step_that_runs_out_of_memory_says_what_it_needs(tiny_fpm_config, monkeypatch):
  import jax

  from fashion_jax import sharding, systems
  from fashion_jax.tools import benchmarking

  def out_of_memory(fn, rounds, steps):
    raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 26451436904 "
                                     "bytes.")

  monkeypatch.setattr(benchmarking, "time_rounds", out_of_memory)
  system = systems.get_system(tiny_fpm_config.system)
  spec = benchmarking.benchmark_spec(tiny_fpm_config)
  with pytest.raises(ValueError, match=r"needs \d+\.\d GiB by XLA's memory analysis.*"
                                       "Out of memory allocating"):
    benchmarking.measure_step(tiny_fpm_config, system, spec, sharding.make_mesh(1), 1, 1)


def test_conv_profile_reads_the_pose_machines_layers_from_the_model():
  from configs import fpm as fpm_config
  from fashion_jax.tools import benchmarking

  found, skipped, image_hw = benchmarking.model_convolutions(fpm_config.get_config("runlocal"))
  counts = {benchmarking.describe_convolution(key): n for key, n in found.items()}
  # By hand from the :runlocal widths, 3 stages: stage 1's trunk (5x5x32, 3x3x32 twice, 3x3x16)
  # and head (5x5x64, 1x1x64, 1x1x25); the shared trunk (the first three again); per stage
  # t = 2, 3: its own 3x3x16, then 7x7x32 three times (the first on 16 + 25 channels), 1x1x32
  # and 1x1x25. Every map at 1/8 of the 128x128 input is 16x16.
  assert counts == {
      "5x5 3->32 @128x128": 2, "3x3 32->32 @64x64": 2, "3x3 32->32 @32x32": 2,
      "3x3 32->16 @16x16": 3, "5x5 16->64 @16x16": 1, "1x1 64->64 @16x16": 1,
      "1x1 64->25 @16x16": 1, "7x7 41->32 @16x16": 2, "7x7 32->32 @16x16": 4,
      "1x1 32->32 @16x16": 2, "1x1 32->25 @16x16": 2}
  assert skipped == 0 and image_hw == (128, 128)


def test_conv_profile_times_every_pass_and_writes_the_table(tmp_path):
  pytest.importorskip("torch", reason="torch comes with requirements-test.txt")
  import json

  out = subprocess.run(
      [sys.executable, "-m", "tools.conv_profile", "--config=configs/fpm.py:runlocal",
       "--image_size=32", "--config.batch_size=1", "--config.model.num_stages=1", "--rounds=1",
       f"--out={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  result = json.loads((tmp_path / "conv_profile.json").read_text())
  rows = {r["convolution"]: r["passes"] for r in result["rows"]}
  assert set(rows) == {"5x5 3->32 @32x32", "3x3 32->32 @16x16", "3x3 32->32 @8x8",
                       "3x3 32->16 @4x4", "5x5 16->64 @4x4", "1x1 64->64 @4x4", "1x1 64->25 @4x4"}
  assert rows["5x5 3->32 @32x32"]["input grad"] is None  # fed by the image: no input gradient
  for name, passes in rows.items():
    timed = [p for p in ("forward", "input grad", "weight grad") if passes[p] is not None]
    assert len(timed) == (2 if name.startswith("5x5 3->") else 3), name
    for part in timed:
      assert passes[part]["jax"] > 0 and passes[part]["torch"] > 0, (name, part)
  table = (tmp_path / "conv_profile.md").read_text()
  assert table.count("\n| ") == 2 + len(rows) and "| **weighted total** |" in table
