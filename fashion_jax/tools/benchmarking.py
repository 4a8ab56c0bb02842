"""What `tools/bench_step` and `tools/bench_systems` measure: one config's compiled train step
(compile times, step time over rounds, FLOPs, memory, MFU) and its input pipeline.

The step is the trainer's own `fashion_jax.steps.train_step`, jitted over the mesh with donated
state, on variables initialised as every run initialises them, fed a fixed random batch with the
shapes of the config's dataset (its spec, read without its data). The input pipeline is timed
apart, on the same data config, so the two numbers say whether the step or the data is the limit.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import tempfile
import time

import jax
import ml_collections
import numpy as np

from fashion_jax import config_base, optim, sharding, state, steps, systems
from fashion_jax import phases as phases_lib
from fashion_jax.data import datasets, schema
from fashion_jax.data.synth import render

# Dense peak TFLOP/s per device by (device kind substring, compute dtype).
PEAKS = {("H100", "bfloat16"): 989.0, ("H100", "float32"): 67.0,
         ("H200", "bfloat16"): 989.0, ("H200", "float32"): 67.0,
         ("A100", "bfloat16"): 312.0, ("A100", "float32"): 19.5,
         ("TPU v4", "bfloat16"): 275.0, ("TPU v5 lite", "bfloat16"): 197.0,
         ("TPU v5p", "bfloat16"): 459.0, ("TPU v6", "bfloat16"): 918.0}

# DeepFashion Category & Attribute (coarse): 50 categories, 1000 attributes — the heads of the
# systems trained on it when a benchmark has no data folder to read them from.
DEEPFASHION_HEAD_SIZES = (50, 1000)
# system -> (paper config, bench_step flags giving the paper dataset's heads)
DEEPFASHION_HEADS = (f"--num_categories={DEEPFASHION_HEAD_SIZES[0]}",
                     f"--num_attributes={DEEPFASHION_HEAD_SIZES[1]}")
SYSTEMS = {
    "fpm": ("configs/fpm.py", ()),
    "landmark_attention": ("configs/landmark_attention.py", DEEPFASHION_HEADS),
    "two_stream": ("configs/two_stream.py", DEEPFASHION_HEADS),
    "sister": ("configs/sister.py", ()),
    "mtct": ("configs/mtct.py", ()),
}
COLUMNS = ("system", "phase", "batch", "input", "dtype", "compile cold s", "compile cached s",
           "step s (round medians)", "images/s", "GFLOP/step", "TFLOP/s", "MFU",
           "peak memory GiB", "pipeline images/s (x demand)")

# The input pipeline must produce this many times what the step consumes.
PIPELINE_HEADROOM = 1.5


class SpecUnknown(ValueError):
  """The config's dataset is not prepared and its heads depend on its files."""


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
    raise SpecUnknown(f"{name} is not prepared under {builder.data_dir}, and its heads "
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


def fake_batch(data_cfg, system, spec: schema.DatasetSpec, batch_size: int) -> dict:
  """A batch of the system's fields with the shapes and dtypes its batch source produces for
  `data_cfg` and `spec`: random image, visible points spread over the input, and random labels
  in range (every loss term is live, so a step's loss and gradients are those of a real batch).
  """
  rng = np.random.default_rng(0)
  example = system.batch_source.blank_example(data_cfg, spec)
  h, w = data_cfg.image_size
  dcsa_classes = [2] * len(schema.DCSA_BINARY_LABELS) + [
      len(v) for v in schema.DCSA_MULTICLASS_LABELS.values()]
  for name, value in list(example.items()):
    field = name.rpartition("/")[2]  # positive/image -> image
    if field.endswith("image"):  # image, segmented_image, positive/image, ...
      example[name] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    elif field in ("keypoints", "landmarks"):
      example[name] = rng.uniform(0, min(h, w), np.shape(value)).astype(np.float32)
      example[f"{name}_visibility"] = np.full(np.shape(value)[:-1], schema.VISIBLE, np.int8)
    elif field == "category" and spec.category_names:
      example[name] = np.asarray(rng.integers(0, len(spec.category_names)), np.int32)
    elif field == "attributes":
      example[name] = rng.integers(0, 2, np.shape(value)).astype(np.int8)
    elif field == "dcsa_labels":
      example[name] = np.asarray([rng.integers(0, n) for n in dcsa_classes], np.int8)
  return {k: np.stack([np.asarray(example[k])] * batch_size) for k in system.batch_fields
          if k in example}


def peak_tflops(dtype: str, given: float = 0.0) -> float:
  """`given` when > 0, else the table's peak for the first device and `dtype` (NaN: unknown)."""
  if given:
    return given
  kind = jax.devices()[0].device_kind
  return next((v for (name, dt), v in PEAKS.items() if name in kind and dt == dtype),
              float("nan"))


def time_rounds(fn, rounds: int, steps: int) -> list[list[float]]:
  """Wall times of `fn()` (which blocks until its results are ready): [rounds][steps]."""
  out = []
  for _ in range(rounds):
    times = []
    for _ in range(steps):
      t0 = time.perf_counter()
      fn()
      times.append(time.perf_counter() - t0)
    out.append(times)
  return out


def step_statistics(rounds: list[list[float]], batch_size: int) -> dict:
  """Median step time over every timed step, the spread of the rounds' medians, images/s."""
  every = np.concatenate([np.asarray(r) for r in rounds])
  medians = [float(np.median(r)) for r in rounds]
  step_s = float(np.median(every))
  return {"step_s": step_s, "step_min_s": float(every.min()), "step_max_s": float(every.max()),
          "round_medians_s": medians, "round_spread_s": max(medians) - min(medians),
          "images_per_s": batch_size / step_s}


def peak_memory_bytes(memory) -> int | None:
  """Peak device memory of a compiled program from XLA's `memory_analysis()`: arguments,
  outputs not aliased to (donated) arguments, and temporaries; None when XLA gives none."""
  if memory is None:
    return None
  return int(memory.argument_size_in_bytes + memory.output_size_in_bytes
             - memory.alias_size_in_bytes + memory.temp_size_in_bytes)


@contextlib.contextmanager
def fresh_compilation_cache():
  """A persistent compilation cache in a new empty folder for the block (so the first compile
  is cold whatever the user's cache holds, and the second one reads what the first stored).
  JAX opens its cache once per process, so it is reset on entry and exit: otherwise a second
  benchmark in the process would read and write the first one's (deleted) folder."""
  from jax.experimental.compilation_cache import compilation_cache

  with tempfile.TemporaryDirectory(prefix="fashion_jax_bench_cache_") as folder:
    before = {k: getattr(jax.config, k) for k in (
        "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes")}
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()
    try:
      yield folder
    finally:
      for k, v in before.items():
        jax.config.update(k, v)
      compilation_cache.reset_cache()


def compile_twice(jitted, *args):
  """(compiled, cold seconds, cached seconds): trace, lower and compile `jitted` in a fresh
  persistent cache, then again after clearing JAX's in-memory caches (a new process's compile
  of the same program, as a resumed run or the next seed of an ablation does)."""
  with fresh_compilation_cache():
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    cold = time.perf_counter() - t0
    jax.clear_caches()
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    cached = time.perf_counter() - t0
  return compiled, cold, cached


def benchmark_phase(config, index: int | None = None) -> phases_lib.Phase:
  """Phase `index` of `config`, or (None) its longest one: the step a run spends most time in
  (the two-stream network's joint phase, not its landmark warm-up), counted in epochs."""
  phases = phases_lib.resolve_phases(config, steps_per_epoch=1000)
  if index is None:
    return max(phases, key=lambda p: p.num_steps)  # the first of the longest
  if not -len(phases) <= index < len(phases):
    raise ValueError(f"--phase={index}: the config has {len(phases)} phases "
                     f"({', '.join(p.name for p in phases)})")
  return phases[index]


@dataclasses.dataclass
class CompiledStep:
  """The trainer's compiled update for one phase of a config, with its state and a fixed batch;
  calling it runs one step and waits for it."""

  phase: phases_lib.Phase
  module: object
  compiled: object
  holder: dict  # {"state": TrainState}, replaced by every step (the state is donated)
  batch: dict
  compile_cold_s: float
  compile_cached_s: float

  def __call__(self) -> None:
    self.holder["state"], metrics = self.compiled(self.holder["state"], self.batch)
    jax.block_until_ready(metrics)


def compile_step(config, system, spec, mesh, phase_index: int | None = None) -> CompiledStep:
  """Compiles the train step of a phase of `config` (see `benchmark_phase`) as the trainer
  does, on variables initialised as a run initialises them and a fixed random batch."""
  phase = benchmark_phase(config, phase_index)
  batch = fake_batch(phase.data, system, spec, config.batch_size)
  module = system.make_module(phase.model, spec)
  variables = state.init_variables(module, system.batch_fields,
                                   {k: v[0] for k, v in batch.items()}, config.seed)
  tx = optim.make_optimizer(phase, variables["params"])
  holder = {"state": sharding.put_replicated(state.create_state(variables, tx, config.seed),
                                             mesh)}
  update_stats = None
  if phase.trainable != ".*" and variables.get("batch_stats"):  # frozen modules' statistics
    update_stats = optim.updated_statistics(variables["params"], variables["batch_stats"],
                                            phase.trainable)
  device_batch = sharding.put_batch(batch, mesh)
  jitted = steps.compile_train_step(module, system, phase.loss, update_stats)
  compiled, cold, cached = compile_twice(jitted, holder["state"], device_batch)
  return CompiledStep(phase, module, compiled, holder, device_batch, cold, cached)


def measure_step(config, system, spec, mesh, rounds: int, steps_per_round: int,
                 phase_index: int | None = None) -> dict:
  """Compile times, step times, FLOPs, memory of the train step (see `compile_step`), and the
  predict step's time on the trained variables."""
  step = compile_step(config, system, spec, mesh, phase_index)
  cost = step.compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  peak = peak_memory_bytes(step.compiled.memory_analysis())
  try:
    time_rounds(step, 1, 2)  # warm-up
  except jax.errors.JaxRuntimeError as e:
    if "RESOURCE_EXHAUSTED" not in str(e) and "Out of memory" not in str(e):
      raise
    needs = f"{peak / 2**30:.1f} GiB by XLA's memory analysis" if peak else "more memory"
    raise ValueError(f"the {step.phase.name} step of batch {config.batch_size} needs {needs}, "
                     f"more than the device has ({str(e).splitlines()[0]}); try a smaller "
                     "--config.batch_size") from None
  timed = time_rounds(step, rounds, steps_per_round)
  # The prediction step evaluation and `predict` use.
  predict = steps.compile_predict_step(system.make_module(config.model, spec), system)
  variables = sharding.put_replicated(state.variables_of(step.holder["state"]), mesh)
  eval_batch = sharding.put_batch(fake_batch(config.data, system, spec, config.batch_size), mesh)
  run_predict = lambda: jax.block_until_ready(predict(variables, eval_batch))
  time_rounds(run_predict, 1, 2)
  predict_s = float(np.median(time_rounds(run_predict, 1, steps_per_round)[0]))
  return {"phase": step.phase.name, "compile_cold_s": step.compile_cold_s,
          "compile_cached_s": step.compile_cached_s, "rounds": timed,
          **step_statistics(timed, config.batch_size), "predict_s": predict_s,
          "flops": float(cost.get("flops", float("nan"))) if cost else float("nan"),
          "peak_memory_bytes": peak,
          "params": int(sum(x.size for x in jax.tree.leaves(step.holder["state"].params)))}


def pipeline_config(config, num_examples: int) -> ml_collections.ConfigDict:
  """`config` reading a small synthetic set of the same image size when it reads the synthetic
  data (the per-image work is the same; generating the paper-size set is not), else itself."""
  small = ml_collections.ConfigDict(config.to_dict())
  if config_base.dataset_name(config.data) == "fashion_synth":
    small.data.synth.update(num_train=num_examples, num_validation=small.batch_size,
                            num_test=small.batch_size)
  small.progress = False
  return small


def measure_pipeline(config, batches: int, phase_name: str, num_examples: int = 256) -> dict:
  """Images/s (batch rows/s) of the training batch source of `config` in the phase named
  `phase_name`, with its `data.num_threads` workers, after two warm-up batches."""
  from fashion_jax import run  # opens (and for the synthetic set generates) the dataset

  small = pipeline_config(config, max(num_examples, 2 * config.batch_size))
  with tempfile.TemporaryDirectory(prefix="fashion_jax_bench_run_") as workdir:
    this = run.Run(small, os.path.join(workdir, "run"))
    phase = next(p for p in this.phases if p.name == phase_name)
    data = this.train_data(phase, seed=0, start_step=0)
    it = this.system.batch_source.batches(data)
    next(it), next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
      next(it)
    seconds = time.perf_counter() - t0
    this.close()
  return {"pipeline_images_per_s": batches * config.batch_size / seconds,
          "pipeline_workers": int(phase.data.get("num_threads", 2)),
          "pipeline_dataset": this.dataset.name}


def with_model_override(config, key: str, value) -> ml_collections.ConfigDict:
  """A copy of `config` with `config.model[key] = value`."""
  if key not in config.model:
    raise ValueError(f"config.model has no field {key!r}")
  changed = ml_collections.ConfigDict(config.to_dict())
  changed.model[key] = value
  return changed


NHWC = ("NHWC", "HWIO", "NHWC")


def model_convolutions(config) -> tuple[collections.Counter, int, tuple[int, int]]:
  """({(lhs shape, rhs shape, strides, padding): count}, convolutions skipped, image hw) of
  the forward pass of `config`'s model on a batch of its shapes.

  1x1 convolutions run as channel products (`ops.convolution`: pixels flattened to rows, then a
  product) are counted as 1x1 convolutions of stride 1 on the [B, H, W, C] input they multiply
  (a strided one's input is already subsampled).
  """
  system = systems.get_system(config.system)
  spec = benchmark_spec(config)
  batch = fake_batch(config.data, system, spec, config.batch_size)
  module = system.make_module(config.model, spec)
  variables = jax.eval_shape(lambda: state.init_variables(
      module, system.batch_fields, {k: v[0] for k, v in batch.items()}, config.seed))
  jaxpr = jax.make_jaxpr(lambda v, b: module.apply(v, b, train=True, mutable=True))(
      variables, batch)
  found, skipped, rows_of = collections.Counter(), 0, {}
  for eqn in _equations(jaxpr.jaxpr):
    lhs, rhs = (tuple(v.aval.shape) for v in eqn.invars[:2]) if len(eqn.invars) > 1 else ((), ())
    if _flattens_pixels(eqn):
      rows_of[eqn.outvars[0]] = tuple(eqn.invars[0].aval.shape)
      continue
    if _is_pointwise_product(eqn, lhs, rhs) and eqn.invars[0] in rows_of:
      found[(rows_of[eqn.invars[0]], (1, 1, *rhs), (1, 1), ((0, 0), (0, 0)))] += 1
      continue
    if eqn.primitive.name != "conv_general_dilated":
      continue
    p = eqn.params
    plain = (p["feature_group_count"] == 1 and all(d == 1 for d in p["lhs_dilation"])
             and all(d == 1 for d in p["rhs_dilation"]) and _is_nhwc(p["dimension_numbers"]))
    if not plain:
      skipped += 1
      continue
    found[(tuple(lhs), tuple(rhs), tuple(p["window_strides"]),
           tuple(tuple(pair) for pair in p["padding"]))] += 1
  return found, skipped, tuple(config.data.image_size)


def _equations(jaxpr):
  for eqn in jaxpr.eqns:
    yield eqn
    for sub in jax.core.jaxprs_in_params(eqn.params):
      yield from _equations(sub)


def _flattens_pixels(eqn) -> bool:
  """A reshape of [B, H, W, C] features to [B*H*W, C] rows (as `ops.convolution` does)."""
  if eqn.primitive.name != "reshape":
    return False
  before, after = eqn.invars[0].aval.shape, eqn.outvars[0].aval.shape
  return len(before) == 4 and len(after) == 2 and after[1] == before[3]


def _is_pointwise_product(eqn, lhs, rhs) -> bool:
  """A dot of [N, C] pixel rows with a [C, D] kernel over channels: a 1x1 convolution."""
  return (eqn.primitive.name == "dot_general" and len(lhs) == 2 and len(rhs) == 2
          and eqn.params["dimension_numbers"] == (((1,), (0,)), ((), ())))


def _is_nhwc(dimension_numbers) -> bool:
  shape = (1, 1, 1, 1)
  return dimension_numbers == jax.lax.conv_dimension_numbers(shape, shape, NHWC)


def describe_convolution(key) -> str:
  """`9x9 128->128 @64x64` (a stride other than 1: ` /2`) for a `model_convolutions` key."""
  lhs, rhs, strides, _ = key
  stride = "" if strides == (1, 1) else f" /{strides[0]}"
  return f"{rhs[0]}x{rhs[1]} {rhs[2]}->{rhs[3]} @{lhs[1]}x{lhs[2]}{stride}"
