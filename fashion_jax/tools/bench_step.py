r"""Benchmark the compiled train step of any config and the input pipeline that feeds it.

  python -m tools.bench_step --config=configs/fpm.py
  python -m tools.bench_step --config=configs/fpm.py:runlocal --config.batch_size=32
  python -m tools.bench_step --config=configs/fpm.py --config.model.dtype=bfloat16 \
      --peak_tflops=989
  python -m tools.bench_step --config=configs/landmark_attention.py --config.data.num_threads=8
  python -m tools.bench_step --config=configs/two_stream.py --num_categories=50 \
      --num_attributes=1000 --without=boundary_source=none   # the boundary map's share

Reports:
  * compile time cold (a fresh persistent cache) and from the persistent cache (what a resumed
    run, the next seed or the next process pays; runs keep theirs in `$FASHION_JAX_CACHE_DIR`);
  * step time: median over `--rounds` rounds of `--steps` steps, with each round's median
    (their spread says how steady the machine is), images/s, and the predict step's time;
  * FLOPs per step (XLA's cost analysis), achieved TFLOP/s and MFU = achieved / peak, the peak
    from a table of accelerators for the compute dtype or `--peak_tflops`;
  * peak device memory of the step from XLA's memory analysis (arguments, non-donated outputs,
    temporaries);
  * the input pipeline's images/s with `data.num_threads` workers against the step's demand: it
    must be >= 1.5x the step's images/s or the pipeline is the limit. A config on the synthetic
    data is timed on a small synthetic set of the same image size (generated once in the data
    folder); a real dataset must be prepared.

The batch is a fixed random batch of the right shapes for the heads of the config's dataset
(`--num_categories`/`--num_attributes` replace them), so the step time is the device's.
`--json=FILE` writes every number (tools/bench_systems reads it).
"""

from __future__ import annotations

import ast
import json
import os

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from fashion_jax import cli, sharding, systems
from fashion_jax.tools import benchmarking

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, optionally `path:variant`.")
flags.DEFINE_integer("steps", 5, "Timed steps per round (after two warm-up steps).")
flags.DEFINE_integer("rounds", 3, "Rounds of --steps timed steps.")
flags.DEFINE_float("peak_tflops", 0.0, "Peak TFLOP/s of one device for MFU; 0: look it up.")
flags.DEFINE_integer("num_categories", 0, "Head sizes to use instead of the config's dataset's "
                     "(e.g. DeepFashion's 50 and 1000 when it is not prepared); 0: the "
                     "dataset's.")
flags.DEFINE_integer("num_attributes", 0, "See --num_categories.")
flags.DEFINE_string("without", "", "A model override, e.g. `boundary_source=none`: the train step "
                    "is timed again with it, and the share of step time the part it removes "
                    "takes is printed.")
flags.DEFINE_string("phase", "longest", "The training phase whose step is timed: its index "
                    "in config.phases, or `longest` (the one with the most steps).")
flags.DEFINE_integer("pipeline_batches", 10, "Training batches the input pipeline is timed on; "
                     "0: do not time it.")
flags.DEFINE_string("accelerator_dtype", "", "Compute dtype to use on a GPU or TPU instead of "
                    "config.model.dtype (parameters stay float32), e.g. bfloat16; '' keeps it.")
flags.DEFINE_string("json", "", "Write every measurement to this JSON file.")


def parse_without(without: str) -> tuple[str, object] | None:
  """`key=value` -> (key, value as a Python literal, else the string); '' -> None."""
  if not without:
    return None
  key, _, value = without.partition("=")
  try:
    return key, ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return key, value


def describe(config, system_name: str, mesh) -> dict:
  return {"system": system_name, "device": jax.devices()[0].device_kind,
          "num_devices": int(mesh.size), "backend": jax.default_backend(),
          "dtype": config.model.dtype, "batch": int(config.batch_size),
          "input": list(config.data.image_size), "jax": jax.__version__,
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def measure(config, args) -> dict:
  """Every number of the module docstring for `config` (`args`: this tool's flags)."""
  without = parse_without(args.without)
  reduced = (benchmarking.with_model_override(config, *without) if without else None)
  system = systems.get_system(config.system)
  try:
    spec = benchmarking.benchmark_spec(config, args.num_categories, args.num_attributes)
  except benchmarking.SpecUnknown as e:
    raise app.UsageError(str(e)) from None
  mesh = sharding.make_mesh(config.get("num_devices", 0))
  row = describe(config, config.system, mesh)
  phase = None if args.phase == "longest" else int(args.phase)
  row.update(benchmarking.measure_step(config, system, spec, mesh, args.rounds, args.steps,
                                       phase))
  achieved = row["flops"] / row["step_s"] / 1e12 / mesh.size
  peak = benchmarking.peak_tflops(config.model.dtype, args.peak_tflops)
  row.update(achieved_tflops=achieved, peak_tflops=peak,
             mfu=achieved / peak if np.isfinite(peak) and peak > 0 else float("nan"))
  if reduced is not None:
    other = benchmarking.measure_step(reduced, system, spec, mesh, args.rounds, args.steps,
                                      phase)
    row["without"] = {"override": args.without, "step_s": other["step_s"],
                      "round_medians_s": other["round_medians_s"]}
  if args.pipeline_batches:
    try:
      row.update(benchmarking.measure_pipeline(config, args.pipeline_batches,
                                                   row["phase"]))
    except (FileNotFoundError, ValueError) as e:  # a real dataset that is not prepared
      row["pipeline_error"] = str(e).splitlines()[0]
  return row


def print_report(row: dict) -> None:
  ms = lambda s: f"{s * 1e3:.1f} ms"
  print(f"system {row['system']}  device {row['device']} x{row['num_devices']}  "
        f"backend {row['backend']}  dtype {row['dtype']}")
  print(f"batch {row['batch']}  input {tuple(row['input'])}  params {row['params'] / 1e6:.2f}M  "
        f"phase {row['phase']}")
  print(f"compile cold {row['compile_cold_s']:.1f} s  from the persistent cache "
        f"{row['compile_cached_s']:.1f} s")
  rounds = ", ".join(ms(m) for m in row["round_medians_s"])
  print(f"step median {ms(row['step_s'])} (min {ms(row['step_min_s'])}, max "
        f"{ms(row['step_max_s'])}; round medians {rounds})  {row['images_per_s']:.1f} images/s")
  print(f"predict step median {ms(row['predict_s'])}  "
        f"{row['batch'] / row['predict_s']:.1f} images/s")
  mfu = (f"MFU {row['mfu']:.1%} (peak {row['peak_tflops']} TFLOP/s)" if np.isfinite(row["mfu"])
         else "MFU unknown: no peak known for this device, give --peak_tflops")
  print(f"FLOPs/step {row['flops'] / 1e9:.4g} G  achieved {row['achieved_tflops']:.3f} TFLOP/s "
        f"per device  {mfu}")
  memory = row["peak_memory_bytes"]
  print("peak memory " + (f"{memory / 2**30:.2f} GiB" if memory is not None
                          else "unknown (XLA gives no memory analysis here)"))
  if "pipeline_images_per_s" in row:
    ratio = row["pipeline_images_per_s"] / row["images_per_s"]
    verdict = ("enough" if ratio >= benchmarking.PIPELINE_HEADROOM else
               "too slow: raise --config.data.num_threads")
    print(f"input pipeline {row['pipeline_images_per_s']:.1f} images/s with "
          f"data.num_threads={row['pipeline_workers']} on {row['pipeline_dataset']}: "
          f"{ratio:.2f}x the step's demand ({verdict}; "
          f">= {benchmarking.PIPELINE_HEADROOM}x needed)")
  elif "pipeline_error" in row:
    print(f"input pipeline not timed: {row['pipeline_error']}")
  if "without" in row:
    print(without_line(row))


def without_line(row: dict) -> str:
  step_s, other = row["step_s"], row["without"]["step_s"]
  # Below the rounds' spread the difference is noise (XLA schedules the two programs
  # differently, so the smaller one can even be slower); say so rather than print a share.
  noise = max(row["round_spread_s"], np.ptp(row["without"]["round_medians_s"]))
  share = (f"the part it removes takes {1 - other / step_s:.1%} of the step"
           if abs(step_s - other) > noise else
           f"the difference ({(step_s - other) * 1e3:+.1f} ms) is within the rounds' spread "
           f"({noise * 1e3:.1f} ms): not measurable at this size")
  return f"without model.{row['without']['override']}: step median {other * 1e3:.1f} ms; {share}"


@cli.report_errors
def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # the pipeline's dataset and run objects log at INFO
  config = FLAGS.config
  if FLAGS.accelerator_dtype and jax.default_backend() != "cpu":
    config.model.dtype = FLAGS.accelerator_dtype
  row = measure(config, FLAGS)
  print_report(row)
  if FLAGS.json:
    with open(FLAGS.json, "w") as f:
      json.dump(row, f, indent=1)


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  app.run(main, flags_parser=cli.parse_flags)
