r"""Prediction speed of every system's paper config: process start -> first prediction, and
steady images/s at batch 1 and 32, from a workdir (`fashion_jax.load(workdir)`) and from its
export (`fashion_jax.serving`), on this machine.

  python -m tools.bench_predict --out=benchmarks/predict
  python -m tools.bench_predict --systems=fpm --variant=runlocal --out=/tmp/p --batch_sizes=1,4

For each system a workdir is made with the config, the paper dataset's heads (DeepFashion's 50
categories and 1000 attributes for the landmark-attention and two-stream networks) and its
initial variables as the best checkpoint (speed does not depend on the values), then exported.
Each (source, batch size) runs in a fresh Python process with a fresh compilation cache folder:
"first" is the wall time from starting the process to the first batch's results (imports,
restore, compile, one batch), "cached" the same in a second process that finds the first one's
compiled program in the cache; then `--calls` more batches are timed for images/s. The images
are random, of 1.5x the input size (so the crop and resize run). Writes `<out>/predict.md`
and `<out>/predict.json`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEMS = ("fpm", "landmark_attention", "two_stream", "sister", "mtct")
DEEPFASHION_HEADS = {"landmark_attention": (50, 1000), "two_stream": (50, 1000)}

CHILD = r"""
import os, sys, time, json
import numpy as np
import fashion_jax
from fashion_jax import compile_cache
compile_cache.enable()  # as the predict command does: $FASHION_JAX_CACHE_DIR
source, batch, calls, started = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
model = fashion_jax.load(source, batch_size=batch)
h, w = model.preprocess.input_hw
rng = np.random.default_rng(0)
images = [rng.integers(0, 256, (h * 3 // 2, w * 3 // 2, 3), dtype=np.uint8) for _ in range(batch)]
masks = [np.ones(i.shape[:2], np.uint8) for i in images] if model.preprocess.segmented else None
model.predict(images, masks=masks)
first = time.time() - started
t0 = time.perf_counter()
for _ in range(calls):
  model.predict(images, masks=masks)
seconds = time.perf_counter() - t0
print(json.dumps({"first_s": first, "images_per_s": batch * calls / seconds if calls else None}))
"""


def make_workdir(system_name: str, variant: str, workdir: str) -> None:
  """A workdir of the system's config whose best checkpoint holds its initial variables."""
  import jax

  from fashion_jax import checkpoints, state, systems
  from fashion_jax import workdir as workdir_files
  from fashion_jax.tools import benchmarking

  config = importlib.import_module(f"configs.{system_name}").get_config(variant or None)
  spec = benchmarking.benchmark_spec(config, *DEEPFASHION_HEADS.get(system_name, (0, 0)))
  system = systems.get_system(config.system)
  module = system.make_module(config.model, spec)
  blank = system.batch_source.blank_example(config.data, spec)
  variables = jax.device_get(state.init_variables(module, system.batch_fields, blank, 0))
  workdir_files.save_config(config, workdir)
  workdir_files.save_dataset_spec(spec, workdir)
  ckpt = checkpoints.Checkpointer(workdir, *system.best_metric)
  try:
    ckpt.save_best(0, variables, {system.best_metric[0]: 0.0})
  finally:
    ckpt.close()


def time_child(source: str, batch: int, calls: int, cache: str) -> dict:
  env = {**os.environ, "FASHION_JAX_CACHE_DIR": cache, "PYTHONPATH": REPO}
  started = time.time()
  done = subprocess.run([sys.executable, "-c", CHILD, source, str(batch), str(calls),
                         repr(started)], capture_output=True, text=True, env=env, cwd=REPO)
  if done.returncode:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return {"error": lines[-1] if lines else f"exit {done.returncode}"}
  return json.loads(done.stdout.strip().splitlines()[-1])


def measure(source: str, batch: int, calls: int) -> dict:
  with tempfile.TemporaryDirectory(prefix="bench_predict_cache_") as cache:
    cold = time_child(source, batch, calls, cache)
    cached = time_child(source, batch, 0, cache)
  return {"first_s": cold.get("first_s"), "first_cached_s": cached.get("first_s"),
          "images_per_s": cold.get("images_per_s"),
          **({"error": cold.get("error") or cached.get("error")}
             if "error" in cold or "error" in cached else {})}


def cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def markdown(rows: list[dict], argv: list[str]) -> str:
  fmt = lambda v, spec: "" if v is None else format(v, spec)
  lines = [f"# Prediction speed: {cpu_name()}, {os.cpu_count()} cores", "",
           f"{datetime.date.today().isoformat()}; "
           f"`python -m tools.bench_predict {' '.join(argv[1:])}`", "",
           "| system | input | source | batch | start -> first prediction s | same, cached "
           "compile s | images/s |", "|---|---|---|---:|---:|---:|---:|"]
  for r in rows:
    lines.append(f"| {r['system']} | {r['input']} | {r['source']} | {r['batch']} | "
                 f"{fmt(r.get('first_s'), '.1f')} | {fmt(r.get('first_cached_s'), '.1f')} | "
                 f"{fmt(r.get('images_per_s'), '.2f')} |"
                 + (f" error: {r['error']}" if "error" in r else ""))
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--systems", default=",".join(SYSTEMS))
  parser.add_argument("--variant", default="", help="config variant, e.g. runlocal")
  parser.add_argument("--batch_sizes", default="1,32")
  parser.add_argument("--calls", type=int, default=2, help="timed batches after the first")
  args = parser.parse_args(argv)
  systems = args.systems.split(",")
  if set(systems) - set(SYSTEMS):
    parser.error(f"--systems: unknown {sorted(set(systems) - set(SYSTEMS))}; known {SYSTEMS}")
  os.makedirs(args.out, exist_ok=True)
  rows = []
  with tempfile.TemporaryDirectory(prefix="bench_predict_") as root:
    for name in systems:
      workdir, exported = os.path.join(root, name), os.path.join(root, f"{name}_export")
      make_workdir(name, args.variant, workdir)
      from fashion_jax import export
      from fashion_jax import workdir as workdir_files

      export.export_model(workdir, exported, platforms=("cpu",))
      size = "x".join(map(str, workdir_files.load_config(workdir).data.image_size))
      for source, path in (("workdir", workdir), ("export", exported)):
        for batch in (int(b) for b in args.batch_sizes.split(",")):
          row = {"system": name, "input": size, "source": source, "batch": batch,
                 **measure(path, batch, args.calls)}
          print(json.dumps(row), flush=True)
          rows.append(row)
          with open(os.path.join(args.out, "predict.json"), "w") as f:
            json.dump(rows, f, indent=1)
          with open(os.path.join(args.out, "predict.md"), "w") as f:
            f.write(markdown(rows, sys.argv))
  return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
  sys.exit(main())
