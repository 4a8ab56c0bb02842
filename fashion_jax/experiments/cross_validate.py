r"""k-fold cross-validation of one config: every fold trained and evaluated in its own workdir,
resumable fold by fold, then the mean ± std over folds of every metric.

  python -m tools.cross_validate --config=configs/sister.py --workdir=workdirs/sister_cv \
      --override=data.data_dir=DIR --folds=0,3

The config's `data.num_folds` sets k (16 for SisterNetwork, as its paper). Fold f trains on the
other folds (less a validation hold-out, `data.holdout.validation`, for checkpoint selection) and
reports on fold f, in `WORKDIR/fold<f>`. A finished fold (its results_test.json exists) is read,
not retrained; an interrupted one resumes. `--folds` restricts to some folds (a quick run).
Writes `cv.md` (mean ± std over folds of the metrics matching `--metrics`, next to the
baselines) and `cv.json` (every metric of every fold and the summaries).
"""

from __future__ import annotations

import fnmatch
import json
import os

from absl import app, flags, logging

from fashion_jax import cli
from fashion_jax.experiments import ablate

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("config", None, "Config file, optionally `path:variant`.")
  flags.DEFINE_string("workdir", None, "Folder of the cross-validation.")
  flags.DEFINE_list("folds", [], "Folds to run (default: all data.num_folds).")
  flags.DEFINE_multi_string("override", [], "dotted.field=value config overrides, repeated.")
  flags.DEFINE_list("metrics", list(DEFAULT_METRICS),
                    "Patterns of the flat metric names to tabulate (fnmatch).")
  flags.mark_flags_as_required(["config", "workdir"])


def summarise(per_fold: dict[int, dict]) -> dict:
  """{method: {metric: {mean, std, values}}} over folds, for every numeric scalar metric."""
  out = {}
  for results in per_fold.values():
    for method, row in results["methods"].items():
      method = "model" if method not in ("untrained", "training mean") else method
      for metric, value in row.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
          out.setdefault(method, {}).setdefault(metric, []).append(float(value))
  return {m: {k: ablate.mean_std(v) for k, v in row.items()} for m, row in out.items()}


def markdown(summary: dict, patterns: list[str], folds: list[int], title: str) -> str:
  names = [k for k in summary["model"] if any(fnmatch.fnmatch(k, p) for p in patterns)]
  methods = list(summary)
  lines = [f"# {title}", "", f"Mean ± std over folds {folds} (sample std).", "",
           "| metric | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
  for name in names:
    cells = [f"{summary[m][name]['mean']:.4f} ± {summary[m][name]['std']:.4f}"
             if name in summary[m] else "-" for m in methods]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


DEFAULT_METRICS = ("*macc", "*/per_label/*")


def cross_validate(config_path: str, workdir: str, folds: list[int] | None = None,
                   overrides: list[str] = (), metrics: list[str] = DEFAULT_METRICS) -> dict:
  """Runs (or reads) the folds and writes cv.md and cv.json; returns the summary."""
  spec = ",".join(overrides)
  probe = ablate.variant_config(config_path, spec, seed=0)
  num_folds = int(probe.data.num_folds)
  if num_folds < 2:
    raise ValueError(f"{config_path}: data.num_folds = {num_folds}; cross-validation needs >= 2")
  folds = list(range(num_folds)) if not folds else [int(f) for f in folds]
  bad = [f for f in folds if not 0 <= f < num_folds]
  if bad:
    raise ValueError(f"folds {bad} are not in [0, {num_folds})")
  per_fold = {}
  for fold in folds:
    config = ablate.variant_config(config_path, ",".join([*overrides, f"data.fold={fold}"]),
                                   seed=probe.seed)
    logging.info("cross-validation: fold %d of %d", fold, num_folds)
    per_fold[fold] = ablate.run_pair(config, os.path.join(workdir, f"fold{fold}"))["results"]
  summary = summarise(per_fold)
  text = markdown(summary, list(metrics), folds,
                  f"{num_folds}-fold cross-validation of {config_path}")
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "cv.json"), "w") as f:
    json.dump({"config": config_path, "overrides": list(overrides), "folds": folds,
               "summary": summary, "per_fold": per_fold}, f, indent=1)
  with open(os.path.join(workdir, "cv.md"), "w") as f:
    f.write(text)
  return {"summary": summary, "markdown": text}


@cli.report_errors
def main(argv):
  del argv
  from fashion_jax import compile_cache, writers

  writers.quiet_library_logs()
  compile_cache.enable()
  report = cross_validate(FLAGS.config, FLAGS.workdir, FLAGS.folds, FLAGS.override,
                          FLAGS.metrics)
  print(report["markdown"])


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
