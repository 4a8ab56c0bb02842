r"""Train and evaluate one config over variants and seeds; report mean ± std and paired tests.

  python -m tools.ablate --config=configs/two_stream.py:runlocal --workdir=workdirs/tsmt_ablation \
      --variant=full= --variant=no_boundary=no_boundary --variant=gt_boundary=gt_boundary \
      --seeds=0,1,2 --metrics=category/top3,landmarks/mean

`--variant=NAME=SPEC`, repeated: SPEC is a comma-separated list of the config's own variants
(`no_boundary`) and `dotted.field=value` overrides (`model.num_stages=1`); empty is the config
as given. Every (variant, seed) trains in `WORKDIR/NAME/seed<k>` with `config.seed = k`: a
finished pair (its results_test.json exists) is read, not rerun; an interrupted one resumes.
Writes `ablation.md` (mean ± std over seeds per metric and variant, the paper's number beside
it where `--paper=NAME/metric=value` gives one, the baselines, and a paired comparison with the
first variant: the mean per-seed difference and a paired t-test, so a difference is called
real only when it exceeds the seed noise), `ablation.json` (every number) and `ablation.png`
(the first metric per variant, mean ± std with every seed as a dot).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import app, flags, logging

from fashion_jax import cli
from fashion_jax import workdir as workdir_files

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line (defined only when run as a program: importing defines no flags)."""
  flags.DEFINE_string("config", None, "Config file, optionally `path:variant` (the base).")
  flags.DEFINE_string("workdir", None, "Folder of the whole ablation.")
  flags.DEFINE_multi_string("variant", [], "NAME=SPEC, repeated; see the module docstring.")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; every variant runs each.")
  flags.DEFINE_list("metrics", [], "Flat metric names; the first is charted; a further "
                    "evaluator's as NAME:metric (street:landmarks/mean). Default: the system's "
                    "best-checkpoint metric.")
  flags.DEFINE_multi_string("paper", [], "NAME/metric=value: the paper's number for a cell.")
  flags.DEFINE_string("title", "", "Title of the report (default: the config).")
  flags.mark_flags_as_required(["config", "workdir"])


def load_config(path_and_variant: str, extra_variants: list[str]):
  """The config of `path[:variant]` with `extra_variants` appended to its variant list."""
  return cli.load_config_file(path_and_variant, extra_variants)


def variant_config(path_and_variant: str, spec: str, seed: int):
  """The config of one (variant, seed)."""
  items = [s.strip() for s in spec.split(",") if s.strip()]
  is_override = lambda item: "." in item.partition("=")[0] and "=" in item  # model.x=1
  variants = [s for s in items if not is_override(s)]
  overrides = {k: cli.literal(v) for k, _, v in (s.partition("=") for s in items
                                                  if is_override(s))}
  config = load_config(path_and_variant, variants)
  cli.apply_overrides(config, overrides, "variant override")
  config.seed = seed
  return config


def parse_variants(values: list[str], config: str = "") -> dict[str, str]:
  """{NAME: SPEC} of the `--variant=NAME=SPEC` flags. None given is refused, naming the
  variants `config` offers: an ablation of the config alone would train its seeds for nothing
  to compare."""
  variants = {}
  for value in values:
    name, eq, spec = value.partition("=")
    if not eq or not name or name in variants:
      raise app.UsageError(f"--variant={value!r}: expected a new NAME=SPEC")
    variants[name] = spec
  if not variants:
    raise cli.CommandLineError(
        "no --variant given: name at least two, e.g. --variant=full= --variant=NAME=SPEC "
        f"(SPEC: the config's own variants or dotted.field=value overrides){offered(config)}")
  return variants


def offered(config: str) -> str:
  """"; this config's variants: ..." as the config's own refusal lists them, or ""."""
  try:
    load_config(config, ["?"])
  except ValueError as e:
    allowed = str(e).partition("allowed (comma-separated): ")[2]
    return f"; {config.partition(':')[0]} offers {allowed}" if allowed else ""
  except Exception:  # noqa: BLE001 - an unreadable config is reported when it is used
    return ""
  return ""


def parse_seeds(values: list[str]) -> list[int]:
  try:
    return [int(s) for s in values]
  except ValueError:
    raise cli.CommandLineError(f"--seeds={','.join(values)}: expected comma-separated integers "
                         "(e.g. --seeds=0,1,2)") from None


def run_pair(config, workdir: str) -> dict:
  """Trains and evaluates (or reads) one pair; returns its results_test.json and seconds.

  The metrics of the config's further evaluators (`config.evals`) join each method's row as
  "NAME:metric" (e.g. "street:landmarks/mean"), so `--metrics` can name them."""
  from fashion_jax import train

  check_same_config(config, workdir)
  path = workdir_files.results(workdir, "test")
  if not os.path.exists(path):
    start = time.perf_counter()
    try:
      train.train_and_evaluate(config, workdir)
    except train.Stopped as e:  # by a signal, its checkpoint saved
      logging.warning("ablation stopped during %s; rerun the same command to resume", workdir)
      raise SystemExit(e.exit_status) from e
    with open(workdir_files.path(workdir, workdir_files.ABLATION_SECONDS), "w") as f:
      json.dump({"seconds": time.perf_counter() - start}, f)
  with open(path) as f:
    results = json.load(f)
  for evaluator in config.evals:  # its metrics as "NAME:metric" in the same method rows
    with open(workdir_files.results(workdir, f"test_{evaluator['name']}")) as f:
      rows = json.load(f)["methods"]
    for method, row in rows.items():
      results["methods"].setdefault(method, {}).update(
          {f"{evaluator['name']}:{k}": v for k, v in row.items()})
  seconds_path, seconds = workdir_files.path(workdir, workdir_files.ABLATION_SECONDS), None
  if os.path.exists(seconds_path):
    with open(seconds_path) as f:
      seconds = json.load(f)["seconds"]
  return {"results": results, "seconds": seconds}


def check_same_config(config, workdir: str) -> None:
  """A pair's workdir (finished or interrupted) is reused only for the config it ran: a
  variant whose definition changed since would report, or resume, another experiment."""
  path = workdir_files.path(workdir, workdir_files.CONFIG)
  if not os.path.exists(path):
    return
  with open(path) as f:
    differences = workdir_files.config_differences(json.load(f), config)
  if differences:
    raise ValueError(
        f"{workdir} holds a run of another config than this variant's now ("
        f"{'; '.join(differences[:8])}{'; ...' if len(differences) > 8 else ''}): its results "
        "would be reported under the new definition. Give the variant a new name, or move "
        f"{workdir} away to run it again.")


def mean_std(values) -> dict:
  """{mean, std (sample; 0 for one value), values} of a list of numbers."""
  values = np.asarray(values, np.float64)
  return {"mean": float(np.mean(values)),
          "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
          "values": values.tolist()}


def summarise(runs: dict[str, dict[int, dict]], metrics: list[str]) -> dict:
  """{variant: {metric: {mean, std, values}}} of the trained model's row, paired tests against
  the first variant, and the baselines (averaged over every pair they were computed in)."""
  from scipy import stats

  def model_row(pair):
    return next(iter(pair["results"]["methods"].values()))

  table, baselines = {}, {}
  for name, by_seed in runs.items():
    table[name] = {}
    for metric in metrics:
      values = [model_row(p).get(metric) for p in by_seed.values()]
      values = np.asarray([np.nan if v is None else v for v in values], np.float64)
      table[name][metric] = mean_std(values)
    for pair in by_seed.values():
      for method, row in list(pair["results"]["methods"].items())[1:]:
        for metric in metrics:
          baselines.setdefault(method, {}).setdefault(metric, []).append(row.get(metric))
  reference = next(iter(runs))
  paired = {}
  for name in list(runs)[1:]:
    paired[name] = {}
    for metric in metrics:
      a = np.asarray(table[reference][metric]["values"])
      b = np.asarray(table[name][metric]["values"])
      diff = b - a
      p = float(stats.ttest_rel(b, a).pvalue) if len(diff) > 1 and np.std(diff) > 0 else (
          float("nan"))
      paired[name][metric] = {"mean_difference": float(np.mean(diff)),
                              "std_difference": float(np.std(diff, ddof=1)) if len(diff) > 1
                              else 0.0, "p_value": p}
  baselines = {m: {k: float(np.mean([x for x in v if x is not None])) for k, v in row.items()
                   if any(x is not None for x in v)} for m, row in baselines.items()}
  return {"reference": reference, "table": table, "paired": paired, "baselines": baselines}


def markdown(summary: dict, metrics: list[str], paper: dict, seeds: list[int], title: str,
             seconds: float) -> str:
  lines = [f"# {title}", "",
           f"Mean ± std over seeds {seeds} (sample std); {seconds / 60:.0f} minutes of training "
           "and evaluation in all.", "",
           "| variant | " + " | ".join(metrics) + " |",
           "|---|" + "---:|" * len(metrics)]
  for name, row in summary["table"].items():
    cells = []
    for metric in metrics:
      cell = _mean_std_cell(row[metric])
      if (name, metric) in paper:
        cell += f" (paper {paper[name, metric]})"
      cells.append(cell)
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  for method, row in summary["baselines"].items():
    lines.append(f"| *{method}* | " + " | ".join(
        f"{row[m]:.4f}" if m in row else "-" for m in metrics) + " |")
  if summary["paired"]:
    lines += ["", f"Paired against `{summary['reference']}` (same seeds): mean difference ± std "
              "of the per-seed differences, paired t-test p-value; **bold** where p < 0.05, "
              "i.e. the difference exceeds the seed noise.", "",
              "| variant | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for name, row in summary["paired"].items():
      cells = []
      cells = [_paired_cell(row[metric]) for metric in metrics]
      lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _mean_std_cell(cell: dict) -> str:
  """"mean ± std"; "-" where no seed has the metric (a 1-stage model has no stage-2 error)."""
  values = [v for v in cell["values"] if not np.isnan(v)]
  if not values:
    return "-"
  text = f"{np.mean(values):.4f}"
  return text + (f" ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else " (one seed)")


def _paired_cell(d: dict) -> str:
  if np.isnan(d["mean_difference"]):
    return "-"
  if np.isnan(d["p_value"]):  # one seed, or identical differences: no test
    return f"{d['mean_difference']:+.4f}"
  text = f"{d['mean_difference']:+.4f} ± {d['std_difference']:.4f} (p {d['p_value']:.2f})"
  return f"**{text}**" if d["p_value"] < 0.05 else text


def _json_safe(tree):
  """NaN (a metric some variant lacks) as null: JSON has no NaN."""
  if isinstance(tree, dict):
    return {k: _json_safe(v) for k, v in tree.items()}
  if isinstance(tree, list | tuple):
    return [_json_safe(v) for v in tree]
  return None if isinstance(tree, float) and np.isnan(tree) else tree


def chart(summary: dict, metric: str, path: str, title: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = list(summary["table"])
  means = [summary["table"][n][metric]["mean"] for n in names]
  stds = [summary["table"][n][metric]["std"] for n in names]
  fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2, 3.6), dpi=120)
  # Means with error bars, not bars from zero: ablation differences are often a point or two,
  # and the axis zooms to the runs and the baselines so they stay visible.
  ax.errorbar(range(len(names)), means, yerr=stds, fmt="s", markersize=7, capsize=8,
              color="#2b5d8a", zorder=2)
  for i, name in enumerate(names):
    values = summary["table"][name][metric]["values"]
    ax.scatter([i + 0.12] * len(values), values, color="#1b3550", s=12, alpha=0.7, zorder=3)
  ax.set_xticks(range(len(names)), names)
  ax.set_xlim(-0.5, len(names) + 0.6)
  ax.grid(axis="y", linewidth=0.5, alpha=0.5)
  for method, row in summary["baselines"].items():
    if metric in row:
      ax.axhline(row[metric], linestyle="--", linewidth=1, color="#999999")
      ax.text(len(names) - 0.5, row[metric], f" {method}", va="center", fontsize=8)
  ax.set_ylabel(metric)
  ax.set_title(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def run_ablation(config: str, workdir: str, variants: dict[str, str], seeds: list[int],
                 metrics: list[str] = (), paper: dict | None = None, title: str = "") -> dict:
  """Runs (or reads) every (variant, seed) of `config` and writes the report; returns it."""
  from fashion_jax import systems

  # Every config is built before anything trains: a bad variant fails now, not hours in, and
  # a config file edited while the ablation runs does not change the pairs still to come.
  pair_configs = {(name, seed): variant_config(config, spec, seed)
                  for name, spec in variants.items() for seed in seeds}
  os.makedirs(workdir, exist_ok=True)
  runs, seconds, metrics = {name: {} for name in variants}, 0.0, list(metrics)
  for (name, seed), pair_config in pair_configs.items():
    metrics = metrics or [systems.get_system(pair_config.system).best_metric[0]]
    logging.info("ablation: variant %s, seed %d", name, seed)
    runs[name][seed] = run_pair(pair_config, os.path.join(workdir, name, f"seed{seed}"))
    seconds += runs[name][seed]["seconds"] or 0.0
  summary = summarise(runs, metrics)
  title = title or f"Ablation of {config}"
  with open(os.path.join(workdir, "ablation.json"), "w") as f:
    json.dump(_json_safe({"config": config, "variants": variants, "seeds": seeds,
                          "seconds": seconds, **summary}), f, indent=1, allow_nan=False)
  text = markdown(summary, metrics, paper or {}, seeds, title, seconds)
  with open(os.path.join(workdir, "ablation.md"), "w") as f:
    f.write(text)
  chart(summary, metrics[0], os.path.join(workdir, "ablation.png"), title)
  return {**summary, "markdown": text}


@cli.report_errors
def main(argv):
  del argv
  from fashion_jax import compile_cache, writers

  writers.quiet_library_logs()
  compile_cache.enable()
  paper = {}
  for item in FLAGS.paper:
    key, _, value = item.rpartition("=")
    name, _, metric = key.partition("/")
    paper[name, metric] = float(value)
  report = run_ablation(FLAGS.config, FLAGS.workdir, parse_variants(FLAGS.variant, FLAGS.config),
                        parse_seeds(FLAGS.seeds), FLAGS.metrics, paper, FLAGS.title)
  print(report["markdown"])


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
