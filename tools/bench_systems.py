r"""Benchmark every system's paper config with tools/bench_step and write one table.

  python -m tools.bench_systems --out=benchmarks/cpu
  python -m tools.bench_systems --out=benchmarks/h100               # on a GPU: bfloat16
  python -m tools.bench_systems --systems=fpm,mtct --variant=runlocal --rounds=2 --steps=2

Each system runs in its own process (`python -m tools.bench_step ... --json=...`: its memory is
returned when it ends, and a system that fails leaves an error row rather than no table). On a GPU
or TPU the step computes in bfloat16 with float32 parameters (`--accelerator_dtype`); on the CPU
in float32. Writes `<out>/benchmarks.md` (the table, the device and the command) and
`<out>/benchmarks.json` (every number bench_step measured, per system).

The heads are the paper datasets' (DeepFashion's 50 categories and 1000 attributes for the
landmark-attention and two-stream networks) whether or not the data is prepared.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import subprocess
import sys

from absl import app, flags

from fashion_jax import cli
from fashion_jax.tools import benchmarking

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "benchmarks", "Folder for benchmarks.md, benchmarks.json and logs.")
flags.DEFINE_list("systems", [], "Systems to benchmark (default: all of SYSTEMS); `name=CONFIG` "
                  "benchmarks another config file under that name.")
flags.DEFINE_string("variant", "", "Config variant for every system, e.g. `runlocal`.")
flags.DEFINE_integer("steps", 2, "Timed steps per round (bench_step --steps).")
flags.DEFINE_integer("rounds", 3, "Rounds (bench_step --rounds).")
flags.DEFINE_integer("pipeline_batches", 4, "Batches the input pipeline is timed on; 0: none.")
flags.DEFINE_string("accelerator_dtype", "bfloat16", "Compute dtype on a GPU or TPU.")
flags.DEFINE_integer("timeout", 0, "Seconds one system may take (0: no limit); a system past it "
                     "gets an error row and the next one runs.")
flags.DEFINE_string("extra", "", "More bench_step flags for every system, e.g. "
                    "'--config.batch_size=8'.")
flags.DEFINE_multi_string("system_extra", [], "`NAME:FLAGS`: more bench_step flags for one "
                          "system, e.g. 'two_stream:--without=boundary_source=none' (the "
                          "boundary map's share of its step).")

def resolve(entry: str) -> tuple[str, str, tuple[str, ...]]:
  """`name` of SYSTEMS or `name=config_path` -> (name, config, bench_step head flags)."""
  name, _, path = entry.partition("=")
  if path:
    return name, path, ()
  if name not in benchmarking.SYSTEMS:
    raise app.UsageError(f"--systems: unknown {name!r}; known: {', '.join(benchmarking.SYSTEMS)} "
                         "(or name=CONFIG_FILE)")
  return (name, *benchmarking.SYSTEMS[name])


def command(entry: str, json_path: str) -> list[str]:
  _, config, heads = resolve(entry)
  config += f":{FLAGS.variant}" if FLAGS.variant else ""
  own = [f for name, _, f in (e.partition(":") for e in FLAGS.system_extra) if name == entry]
  return [sys.executable, "-m", "tools.bench_step", f"--config={config}", f"--json={json_path}",
          f"--steps={FLAGS.steps}", f"--rounds={FLAGS.rounds}",
          f"--pipeline_batches={FLAGS.pipeline_batches}",
          f"--accelerator_dtype={FLAGS.accelerator_dtype}", *heads, *shlex.split(FLAGS.extra),
          *(flag for f in own for flag in shlex.split(f))]


def run_one(entry: str) -> dict:
  """bench_step's JSON row for `entry` (see `resolve`), or {"system", "error"} on failure."""
  system = resolve(entry)[0]
  json_path = os.path.join(FLAGS.out, f"{system}.json")
  log_path = os.path.join(FLAGS.out, f"{system}.log")
  if os.path.exists(json_path):
    os.remove(json_path)
  print(f"== {system}: {shlex.join(command(entry, json_path))}", flush=True)
  with open(log_path, "w") as log:
    try:
      done = subprocess.run(command(entry, json_path), stdout=subprocess.PIPE, stderr=log,
                            text=True, timeout=FLAGS.timeout or None)
    except subprocess.TimeoutExpired:
      return {"system": system, "error": f"stopped after --timeout={FLAGS.timeout} s"}
  print(done.stdout, end="", flush=True)
  if done.returncode or not os.path.exists(json_path):
    with open(log_path) as f:
      lines = [line.strip() for line in f.read().splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("error:")] or lines[-1:] or ["no output"]
    return {"system": system, "error": f"exit {done.returncode}: {said[-1]} (see {log_path})"}
  with open(json_path) as f:
    return {**json.load(f), "system": system}


def cells(row: dict) -> list[str]:
  if "error" in row:
    return [row["system"], row["error"]] + [""] * (len(benchmarking.COLUMNS) - 2)
  fmt = lambda x, spec: "" if x is None or (isinstance(x, float) and math.isnan(x)) else \
      format(x, spec)
  rounds = ", ".join(f"{m:.3g}" for m in row["round_medians_s"])
  rate = row.get("pipeline_images_per_s")
  pipeline = (f"{rate:.1f} ({rate / row['images_per_s']:.1f}x)" if rate is not None else
              row.get("pipeline_error", "not timed"))
  memory = row["peak_memory_bytes"]
  return [row["system"], row["phase"], str(row["batch"]), "x".join(map(str, row["input"])),
          row["dtype"], fmt(row["compile_cold_s"], ".1f"), fmt(row["compile_cached_s"], ".1f"),
          f"{row['step_s']:.3g} ({rounds})", fmt(row["images_per_s"], ".1f"),
          fmt(row["flops"] / 1e9, ".4g"), fmt(row["achieved_tflops"], ".3f"),
          fmt(row["mfu"], ".1%"), "" if memory is None else f"{memory / 2**30:.2f}", pipeline]


def markdown(rows: list[dict], argv: list[str]) -> str:
  measured = next((r for r in rows if "error" not in r), {})
  lines = [f"# Step benchmarks: {measured.get('device', 'no system ran')} "
           f"x{measured.get('num_devices', '?')} ({measured.get('backend', '?')})", "",
           f"{datetime.date.today().isoformat()}, jax {measured.get('jax', '?')}, "
           f"XLA_FLAGS `{measured.get('xla_flags', '') or '(none)'}`", "",
           "Command: `python -m tools.bench_systems " + shlex.join(argv[1:]) + "`", "",
           "| " + " | ".join(benchmarking.COLUMNS) + " |", "|" + "---|" * len(benchmarking.COLUMNS)]
  lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
  lines += ["", "Step: median over every timed step of the longest training phase, fixed random "
            "batch; round medians show the spread. MFU: achieved over the device's peak for the "
            "dtype (blank where no peak is known, e.g. CPUs). Pipeline: the training batch "
            "source's own rate, which must be >= 1.5x the step's."]
  return "\n".join(lines) + "\n"


@cli.report_errors
def main(argv):
  del argv  # the table quotes sys.argv, flags included
  systems = FLAGS.systems or list(benchmarking.SYSTEMS)
  for entry in systems:
    resolve(entry)  # an unknown name fails before anything runs
  for extra in FLAGS.system_extra:
    if extra.partition(":")[0] not in systems:
      raise app.UsageError(f"--system_extra={extra!r}: expected NAME:FLAGS with NAME one of "
                           f"{', '.join(systems)}")
  os.makedirs(FLAGS.out, exist_ok=True)
  rows = []
  for entry in systems:  # the table is rewritten after each system: an interruption keeps it
    rows.append(run_one(entry))
    with open(os.path.join(FLAGS.out, "benchmarks.json"), "w") as f:
      json.dump(rows, f, indent=1)
    with open(os.path.join(FLAGS.out, "benchmarks.md"), "w") as f:
      f.write(markdown(rows, sys.argv))
  print(f"wrote {os.path.join(FLAGS.out, 'benchmarks.md')}")
  return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
