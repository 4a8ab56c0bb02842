r"""Benchmark the compiled train step of any config: compile time, step time, images/s, FLOPs
and model FLOP utilisation (MFU).

  python -m tools.bench_step --config=configs/fpm.py --steps=20
  python -m tools.bench_step --config=configs/fpm.py:runlocal --config.batch_size=32
  python -m tools.bench_step --config=configs/fpm.py --config.model.dtype=bfloat16 \
      --peak_tflops=989
  python -m tools.bench_step --config=configs/two_stream.py --num_categories=50 \
      --num_attributes=1000 --without=boundary_source=none   # the boundary map's share

The batch is a fixed random batch of the right shapes for the heads of the config's dataset
(its spec, read without its data; `--num_categories`/`--num_attributes` replace them; the input
pipeline is not measured), so the number is the device's. The step is the trainer's own
`fashion_jax.steps.train_step`, jitted over the mesh with donated state, on variables
initialised as every run initialises them. FLOPs come from XLA's cost analysis of the compiled
step; MFU = achieved FLOP/s over `--peak_tflops` (default: a table of known accelerators for the
compute dtype).
"""

from __future__ import annotations

import ast
import dataclasses
import time

import jax
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from fashion_jax import cli, config_base, models, optim, sharding, state, steps
from fashion_jax.data import datasets, schema
from fashion_jax.data.synth import render

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, optionally `path:variant`.")
flags.DEFINE_integer("steps", 20, "Timed steps (after two warm-up steps).")
flags.DEFINE_float("peak_tflops", 0.0, "Peak TFLOP/s of one device for MFU; 0: look it up.")
flags.DEFINE_integer("num_categories", 0, "Head sizes to use instead of the config's dataset's "
                     "(e.g. DeepFashion's 50 and 1000 when it is not prepared); 0: the "
                     "dataset's.")
flags.DEFINE_integer("num_attributes", 0, "See --num_categories.")
flags.DEFINE_string("without", "", "A model override, e.g. `boundary_source=none`: the train step "
                    "is timed again with it, and the share of step time the part it removes "
                    "takes is printed.")

# Dense peak TFLOP/s per device by (device kind substring, compute dtype).
_PEAKS = {("H100", "bfloat16"): 989.0, ("H100", "float32"): 67.0,
          ("H200", "bfloat16"): 989.0, ("H200", "float32"): 67.0,
          ("A100", "bfloat16"): 312.0, ("A100", "float32"): 19.5,
          ("TPU v4", "bfloat16"): 275.0, ("TPU v5 lite", "bfloat16"): 197.0,
          ("TPU v5p", "bfloat16"): 459.0, ("TPU v6", "bfloat16"): 918.0}


def dataset_spec(config) -> schema.DatasetSpec:
  """The spec of the dataset `config` reads, without reading its data: the synthetic set's for
  its attribute set, a prepared dataset's stored spec, or a real builder's fixed one."""
  name = config_base.dataset_name(config.data)
  if name == "fashion_synth":
    return render.ATTRIBUTE_SETS[config.data.synth.attributes].spec
  builder = datasets.get_builder(name, config.data.data_dir or None,
                                 config=config.data.builder_config or None)
  if datasets.prepared(builder):
    return datasets.dataset_spec(builder)
  static = builder.static_spec() if hasattr(builder, "static_spec") else None
  if static is None:
    raise app.UsageError(f"{name} is not prepared under {builder.data_dir}, and its heads "
                         "depend on its files: give --num_categories and --num_attributes "
                         "(e.g. DeepFashion's 50 and 1000)")
  return static


def benchmark_spec(config, num_categories: int = 0, num_attributes: int = 0
                   ) -> schema.DatasetSpec:
  """The config's dataset spec, with the head sizes given (> 0) replacing its own, each only
  its head."""
  spec = dataset_spec(config) if not (num_categories and num_attributes) else schema.DatasetSpec()
  if num_categories:
    spec = dataclasses.replace(
        spec, category_names=tuple(f"c{i}" for i in range(num_categories)))
  if num_attributes:
    n = num_attributes
    spec = dataclasses.replace(
        spec, attribute_names=tuple(f"a{i}" for i in range(n)), attribute_groups=(0,) * n,
        attribute_group_names=("all",))
  return spec


def fake_batch(config, system, spec: schema.DatasetSpec, batch_size: int) -> dict:
  """A batch of the system's fields with the shapes and dtypes the pipeline produces for
  `spec` (random image, visible points spread over the input)."""
  rng = np.random.default_rng(0)
  example = system.batch_source.blank_example(config.data, spec)
  h, w = config.data.image_size
  for name, value in example.items():
    if name.endswith("image"):  # image, segmented_image, positive/image, ...
      example[name] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    elif name.endswith(("keypoints", "landmarks")):
      example[name] = rng.uniform(0, min(h, w), np.shape(value)).astype(np.float32)
      example[f"{name}_visibility"] = np.full(np.shape(value)[:-1], schema.VISIBLE, np.int8)
  return {k: np.stack([np.asarray(example[k])] * batch_size) for k in system.batch_fields
          if k in example}


def peak_tflops(dtype: str) -> float:
  if FLAGS.peak_tflops:
    return FLAGS.peak_tflops
  kind = jax.devices()[0].device_kind
  for (name, dt), value in _PEAKS.items():
    if name in kind and dt == dtype:
      return value
  return float("nan")


def median_seconds(fn, rounds: int) -> tuple[float, list[float]]:
  """Median wall time of `fn()` (which blocks until its results are ready) over `rounds`."""
  times = []
  for _ in range(rounds):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), times


def time_train_step(config, system, spec, mesh, batch) -> dict:
  """Compiles the train step of `config` and times it on `batch` (see the module docstring)."""
  module = system.make_module(config.model, spec)
  phase = optim.resolve_phases(config, steps_per_epoch=1000)[0]
  variables = state.init_variables(module, system.batch_fields,
                                   {k: v[0] for k, v in batch.items()}, config.seed)
  tx = optim.make_optimizer(phase, variables["params"])
  holder = {"state": sharding.put_replicated(state.create_state(variables, tx, config.seed),
                                             mesh)}
  device_batch = sharding.put_batch(batch, mesh)
  t0 = time.perf_counter()
  compiled = steps.compile_train_step(module, system, phase.loss).lower(
      holder["state"], device_batch).compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost

  def one_step():
    holder["state"], metrics = compiled(holder["state"], device_batch)
    jax.block_until_ready(metrics)

  median_seconds(one_step, 2)  # warm-up
  step_s, times = median_seconds(one_step, FLAGS.steps)
  # The prediction step evaluation and `predict` use, on the trained variables.
  predict = steps.compile_predict_step(module, system)
  variables = sharding.put_replicated(state.variables_of(holder["state"]), mesh)
  run_predict = lambda: jax.block_until_ready(predict(variables, device_batch))
  median_seconds(run_predict, 2)
  predict_s, _ = median_seconds(run_predict, FLAGS.steps)
  return {"compile_s": compile_s, "step_s": step_s, "times": times, "predict_s": predict_s,
          "flops": float(cost.get("flops", float("nan"))) if cost else float("nan"),
          "params": sum(x.size for x in jax.tree.leaves(holder["state"].params))}


def without_config(config, without: str):
  """`config` with the `--without` model override applied, or None when none is given."""
  if not without:
    return None
  key, _, value = without.partition("=")
  if key not in config.model:
    raise app.UsageError(f"--without: config.model has no field {key!r}")
  reduced = ml_collections.ConfigDict(config.to_dict())
  try:  # numbers, booleans, tuples as Python literals; anything else is a string
    reduced.model[key] = ast.literal_eval(value)
  except (ValueError, SyntaxError):
    reduced.model[key] = value
  return reduced


@cli.report_errors
def main(argv):
  del argv
  config = FLAGS.config
  reduced = without_config(config, FLAGS.without)  # a bad --without fails before any timing
  system = models.get_system(config.system)
  spec = benchmark_spec(config, FLAGS.num_categories, FLAGS.num_attributes)
  mesh = sharding.make_mesh(config.get("num_devices", 0))
  batch = fake_batch(config, system, spec, config.batch_size)
  timed = time_train_step(config, system, spec, mesh, batch)
  step_s, times, flops = timed["step_s"], timed["times"], timed["flops"]
  achieved = flops / step_s / 1e12 / mesh.size
  peak = peak_tflops(config.model.dtype)
  print(f"system {config.system}  device {jax.devices()[0].device_kind} x{mesh.size}  "
        f"backend {jax.default_backend()}  dtype {config.model.dtype}")
  print(f"batch {config.batch_size}  input {tuple(config.data.image_size)}  "
        f"params {timed['params'] / 1e6:.2f}M")
  print(f"compile {timed['compile_s']:.1f} s  step median {step_s * 1e3:.1f} ms "
        f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f})  "
        f"{config.batch_size / step_s:.1f} images/s")
  print(f"predict step median {timed['predict_s'] * 1e3:.1f} ms  "
        f"{config.batch_size / timed['predict_s']:.1f} images/s")
  mfu = (f"MFU {achieved / peak:.1%} (peak {peak} TFLOP/s)" if np.isfinite(peak) and peak > 0
         else "MFU unknown: no peak known for this device, give --peak_tflops")
  print(f"FLOPs/step {flops / 1e9:.4g} G  achieved {achieved:.2f} TFLOP/s per device  {mfu}")
  if reduced is not None:
    other_times = time_train_step(reduced, system, spec, mesh, batch)["times"]
    other = float(np.median(other_times))
    # Below the steps' own spread the difference is noise (XLA schedules the two programs
    # differently, so the smaller one can even be slower); say so rather than print a share.
    noise = max(np.ptp(timed["times"]), np.ptp(other_times))
    share = (f"the part it removes takes {1 - other / step_s:.1%} of the step"
             if abs(step_s - other) > noise else
             f"the difference ({(step_s - other) * 1e3:+.1f} ms) is within the steps' spread "
             f"({noise * 1e3:.1f} ms): not measurable at this size")
    print(f"without model.{FLAGS.without}: step median {other * 1e3:.1f} ms "
          f"(min {min(other_times) * 1e3:.1f}, max {max(other_times) * 1e3:.1f}); {share}")


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  app.run(main, flags_parser=cli.parse_flags)
