"""The ablation runner at toy size: every (variant, seed) trained once, resumable, and the
report's numbers are those of the runs' own results files."""

import json
import os
import signal

import numpy as np
import pytest
from scipy import stats

from fashion_jax import train
from fashion_jax.experiments import ablate


def test_runs_every_pair_once_and_reports_their_numbers(toy_config_file, tmp_path, monkeypatch):
  workdir = str(tmp_path / "ablation")
  args = dict(config=f"{toy_config_file}:runlocal", workdir=workdir,
              variants=ablate.parse_variants(["two_stages=", "one_stage=model.num_stages=1"]),
              seeds=[0, 1], metrics=["fashionai_ne/mean", "fashionai_ne/num_counted"],
              paper={("two_stages", "fashionai_ne/mean"): 0.0634})
  ablate.run_ablation(**args)
  runs = {}
  for name in ("two_stages", "one_stage"):
    for seed in (0, 1):
      with open(os.path.join(workdir, name, f"seed{seed}", "results_test.json")) as f:
        runs[name, seed] = next(iter(json.load(f)["methods"].values()))["fashionai_ne/mean"]
      with open(os.path.join(workdir, name, f"seed{seed}", "config.json")) as f:
        saved = json.load(f)
      assert saved["seed"] == seed and saved["model"]["num_stages"] == (
          2 if name == "two_stages" else 1)
  with open(os.path.join(workdir, "ablation.json")) as f:
    summary = json.load(f)
  for name in ("two_stages", "one_stage"):
    values = [runs[name, 0], runs[name, 1]]
    cell = summary["table"][name]["fashionai_ne/mean"]
    assert cell["values"] == values
    assert cell["mean"] == pytest.approx(np.mean(values))
    assert cell["std"] == pytest.approx(np.std(values, ddof=1))
  paired = summary["paired"]["one_stage"]["fashionai_ne/mean"]
  a, b = [runs["two_stages", s] for s in (0, 1)], [runs["one_stage", s] for s in (0, 1)]
  assert paired["mean_difference"] == pytest.approx(np.mean(np.subtract(b, a)))
  assert paired["p_value"] == pytest.approx(stats.ttest_rel(b, a).pvalue, nan_ok=True)
  report = open(os.path.join(workdir, "ablation.md")).read()
  assert f"{np.mean([runs['two_stages', 0], runs['two_stages', 1]]):.4f} ± " in report
  assert "(paper 0.0634)" in report and "*training mean*" in report
  assert os.path.getsize(os.path.join(workdir, "ablation.png")) > 1000

  # Finished pairs are read, not retrained; a pair whose results are gone is run again.
  trained = []

  def stopped_by_sigterm(config, workdir):
    trained.append(workdir)
    raise train.Stopped(signal.SIGTERM, step=1)

  monkeypatch.setattr("fashion_jax.train.train_and_evaluate", stopped_by_sigterm)
  os.remove(os.path.join(workdir, "one_stage", "seed1", "results_test.json"))
  with pytest.raises(SystemExit) as stop:
    ablate.run_ablation(**args)
  assert stop.value.code == 128 + signal.SIGTERM  # the run's own exit status, passed on
  assert trained == [os.path.join(workdir, "one_stage", "seed1")]

  # A variant whose definition changed is not read as if it were the old one.
  trained.clear()
  redefined = dict(args, variants=ablate.parse_variants(
      ["two_stages=optimizer.learning_rate=0.5", "one_stage=model.num_stages=1"]))
  with pytest.raises(ValueError, match=r"ablation/two_stages/seed0 holds a run of another config "
                     r".*optimizer.learning_rate: [0-9.e-]+ in the run, 0.5 now"):
    ablate.run_ablation(**redefined)
  assert trained == []


def test_metrics_a_variant_lacks_are_dashes_not_nan():
  # A 1-stage pose machine has no stage-2 error; one seed has no spread and no test.
  def pair(row):
    return {"results": {"methods": {"model": row, "untrained": {"ne": 1.0}}}, "seconds": 60.0}

  runs = {"s1": {0: pair({"ne": 0.30, "ne/stage1": 0.30}),
                 1: pair({"ne": 0.28, "ne/stage1": 0.28})},
          "s2": {0: pair({"ne": 0.20, "ne/stage1": 0.33, "ne/stage2": 0.20}),
                 1: pair({"ne": 0.24, "ne/stage1": 0.32, "ne/stage2": 0.24})}}
  metrics = ["ne", "ne/stage1", "ne/stage2"]
  summary = ablate.summarise(runs, metrics)
  text = ablate.markdown(summary, metrics, {}, [0, 1], "t", 120.0)
  assert "nan" not in text
  assert "| s1 | 0.2900 ± 0.0141 | 0.2900 ± 0.0141 | - |" in text  # std of (0.30, 0.28)
  # Paired t with 1 degree of freedom: p = 1 - 2 atan(|t|) / pi; t = -2.33 and 7.0 here.
  assert "| s2 | -0.0700 ± 0.0424 (p 0.26) | +0.0350 ± 0.0071 (p 0.09) | - |" in text
  one_seed = ablate.markdown(ablate.summarise({k: {0: v[0]} for k, v in runs.items()}, metrics),
                             metrics, {}, [0], "t", 60.0)
  assert "| s1 | 0.3000 (one seed) | 0.3000 (one seed) | - |" in one_seed
  assert "| s2 | -0.1000 | +0.0300 | - |" in one_seed
  assert json.loads(json.dumps(ablate._json_safe(summary), allow_nan=False))


def test_an_override_of_a_field_the_config_lacks_is_refused(toy_config_file):
  with pytest.raises(ValueError, match=r"'model.num_stagez': the config has no such field"):
    ablate.variant_config(f"{toy_config_file}:runlocal", "model.num_stagez=1", seed=0)


def test_a_bad_variant_fails_before_any_pair_trains(toy_config_file, tmp_path, monkeypatch):
  trained = []
  monkeypatch.setattr(ablate, "run_pair", lambda config, workdir: trained.append(workdir))
  with pytest.raises(ValueError, match="unknown config variant"):
    ablate.run_ablation(f"{toy_config_file}:runlocal", str(tmp_path / "a"),
                        {"full": "", "broken": "no_such_variant"}, seeds=[0, 1])
  assert trained == []


def test_no_variant_or_bad_seeds_are_refused_naming_the_flag():
  import subprocess
  import sys

  base = [sys.executable, "-m", "tools.ablate", "--config=configs/fpm.py:runlocal",
          "--workdir=/nonexistent/ablation"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  none = subprocess.run(base, capture_output=True, text=True, timeout=300, env=env)
  assert none.returncode == 2 and "Traceback" not in none.stderr
  assert "no --variant given" in none.stderr and "runlocal, stages=<int>" in none.stderr
  seeds = subprocess.run(base + ["--variant=a=", "--variant=b=runlocal", "--seeds=a"],
                         capture_output=True, text=True, timeout=300, env=env)
  assert seeds.returncode == 2 and "--seeds=a: expected comma-separated integers" in (
      seeds.stderr)
  assert not os.path.exists("/nonexistent/ablation")


def test_a_further_evaluator_s_metrics_are_named_after_it(tmp_path):
  """A finished pair is read; `config.evals`' results join its rows as "NAME:metric"."""
  import ml_collections
  workdir = str(tmp_path)
  def results(model, untrained):
    return {"methods": {"model (step 9)": {"landmarks/mean": model},
                        "untrained": {"landmarks/mean": untrained}}}
  main, street = results(0.1, 0.5), results(0.2, 0.6)
  for name, results in (("results_test.json", main), ("results_test_street.json", street)):
    with open(os.path.join(workdir, name), "w") as f:
      json.dump(results, f)
  street_evaluator = dict(name="street", data=dict(eval_domain="street"))
  config = ml_collections.ConfigDict({"evals": (street_evaluator,)})
  rows = ablate.run_pair(config, workdir)["results"]["methods"]
  assert rows["model (step 9)"] == {"landmarks/mean": 0.1, "street:landmarks/mean": 0.2}
  assert rows["untrained"]["street:landmarks/mean"] == 0.6
  summary = ablate.summarise({"full": {0: ablate.run_pair(config, workdir)}},
                             ["street:landmarks/mean"])
  assert summary["table"]["full"]["street:landmarks/mean"]["values"] == [0.2]


def test_an_interrupted_cross_validation_rerun_with_another_config_is_refused(tmp_path,
                                                                               monkeypatch):
  """A fold's workdir keeps the config it ran; a rerun whose config differs names the fields
  instead of resuming (or reporting) the old fold under the new definition."""
  from fashion_jax import workdir as workdir_files
  from fashion_jax.experiments import cross_validate

  ran = ablate.variant_config("configs/sister.py:runlocal", "data.fold=0", seed=0)
  workdir_files.save_config(ran, str(tmp_path / "fold0"))  # fold 0 began with these settings
  trained = []
  monkeypatch.setattr("fashion_jax.train.train_and_evaluate",
                      lambda config, workdir: trained.append(workdir))
  with pytest.raises(ValueError, match=r"fold0 holds a run of another config .*"
                     r"optimizer.learning_rate: [0-9.e-]+ in the run, 0.5 now"):
    cross_validate.cross_validate("configs/sister.py:runlocal", str(tmp_path), folds=[0],
                                  overrides=["optimizer.learning_rate=0.5"])
  assert trained == []
