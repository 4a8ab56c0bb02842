r"""Train-step time of this package against PyTorch eager on the same machine, side by side.

  python -m tools.compare_torch                       # every model below, 5 timed steps a side
  python -m tools.compare_torch --models=resnet50,vgg16 --rounds=3 --out=DIR
  python -m tools.compare_torch --models=two_stream,sister --batch=8   # another batch, both sides
  FASHION_JAX_XLA_OPTIONS=off python -m tools.compare_torch   # without the package's XLA options

Models (float32, Adam, the same batch and input on both sides):
  fpm          the pose machine's paper config: 6 stages, 512x512, batch 5;
  fpm@256      the same at 256x256;
  landmark_attention  the paper config: VGG-16 at 224x224, batch 16, DeepFashion's heads;
  two_stream   the two-stream network's paper config, its joint phase: a 4-stack hourglass at
               256x256 and ResNet-50 at 224x224 with boundary and structure awareness, batch 32,
               DeepFashion's heads;
  sister       the SisterNetwork's paper config: Sister-A, two ResNet-50 streams at 224x224,
               batch 32, the 23 binary and 3 multi-class labels;
  mtct         the multi-task curriculum transfer's paper config, its longest phase (stage 1,
               shop images): NIN trunk and a branch per attribute group at 224x224, batch 64;
  resnet50, vgg16     ImageNet classifiers at 224x224, batch 8 and 16, cross-entropy.
The JAX side of a system is the trainer's own compiled step
(fashion_jax/tools/benchmarking.compile_step, its targets and metrics included); the PyTorch
side is the same network (tools/torch/systems.py, tools/torch/reference.py) with the same losses
against fixed targets (tools/torch/steps.py).
Each side runs alone, in a process of its own (tools/timing_worker.py), one after the other: two
warm-up steps, then `--rounds` timed steps; the table gives the medians and their ratio, the JSON
every step. Not interleaved, as an earlier version did: on this project's machine a PyTorch
process merely alive beside the JAX one (idle between its own steps) doubled the
landmark-attention JAX step (11 -> 21 s, all of it page-fault system time), and in one shared
process each framework's steps paid for the other's allocations (VGG-16: 9.4 s alone, 14.5 s
after four other models). Run it on quiet cores: a change in load between the two sides is not
shared.

Needs torch (`pip install -r requirements-test.txt`). Writes `<out>/compare_torch.md` and
`.json` when `--out` is given.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags

from fashion_jax import cli, sharding, systems
from fashion_jax.tools import benchmarking
from tools import timing_worker

FLAGS = flags.FLAGS
SYSTEMS = ("fpm", "fpm@256", "landmark_attention", "two_stream", "sister", "mtct")  # paper configs
MODELS = (*SYSTEMS, "resnet50", "vgg16")
flags.DEFINE_list("models", list(MODELS),
                  "Models to compare.")
flags.DEFINE_integer("rounds", 5, "Timed steps per side, after two warm-up steps.")
flags.DEFINE_string("out", "", "Folder for compare_torch.md and compare_torch.json.")
flags.DEFINE_float("scale", 1.0, "Multiply every input side by this (tests use a small one).")
flags.DEFINE_integer("batch", 0, "Batch size on both sides (0: each model's own, listed above).")


def _config(name: str, scale: float) -> ml_collections.ConfigDict:
  from configs import fpm, landmark_attention, mtct, sister, two_stream

  if name.startswith("fpm"):
    c = fpm.get_config()
    if name == "fpm@256":
      c.data.image_size = (256, 256)
  else:
    c = {"sister": sister, "mtct": mtct, "two_stream": two_stream}.get(
        name, landmark_attention).get_config()
  scaled = lambda size, multiple: max(1, round(size * scale / multiple)) * multiple
  side = scaled(c.data.image_size[0], 64 if name == "two_stream" else 32)  # hourglass: 64x64 / 16
  if name == "two_stream":  # its ResNet's input, resized from the crop, scales with it
    c.model.classification_size = scaled(c.model.classification_size, 32)
  c.data.image_size, c.num_devices = (side, side), 1
  return c


def jax_system_step(config, num_categories=0, num_attributes=0):
  """The trainer's compiled step for `config` (heads of these sizes where given, else the
  config's dataset's)."""
  system = systems.get_system(config.system)
  spec = benchmarking.benchmark_spec(config, num_categories, num_attributes)
  return benchmarking.compile_step(config, system, spec, sharding.make_mesh(1))


def jax_classifier_step(name: str, batch: int, side: int):
  """A compiled Adam step of a backbone's ImageNet classifier, cross-entropy on fixed labels."""
  from fashion_jax.models import resnet, vgg

  module = resnet.ResNet50() if name == "resnet50" else vgg.VGG16()
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.standard_normal((batch, side, side, 3)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 1000, batch))
  variables = module.init({"params": jax.random.key(0)}, images[:1], train=False)
  params, stats = variables["params"], variables.get("batch_stats", {})
  tx = optax.adam(1e-4)

  def loss_fn(params, stats, key):
    out, updated = module.apply({"params": params, "batch_stats": stats}, images, train=True,
                                mutable=["batch_stats"], rngs={"dropout": key})
    loss = optax.softmax_cross_entropy_with_integer_labels(out["logits"], labels).mean()
    return loss, updated.get("batch_stats", {})

  @jax.jit
  def update(params, opt_state, stats, key):
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, key)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, stats, loss

  update = jax.jit(update, donate_argnums=(0, 1, 2))
  holder = [params, tx.init(params), stats]

  def step():
    params, opt_state, stats, loss = update(*holder, jax.random.key(0))
    holder[:] = [params, opt_state, stats]
    jax.block_until_ready(loss)
  return step


def build_step(framework: str, name: str, scale: float, batch: int = 0
               ) -> tuple[Callable[[], object], int, int]:
  """(one training step of model `name` in "jax" or "torch", batch, input side); `batch` > 0
  replaces the model's own."""
  if name in ("resnet50", "vgg16"):
    config, side = None, int(224 * scale)
    batch = batch or (8 if name == "resnet50" else 16)
  elif name in SYSTEMS:
    config = _config(name, scale)
    config.batch_size = batch = batch or config.batch_size
    side = config.data.image_size[0]
  else:
    raise app.UsageError(f"--models: unknown {name!r}")
  if framework == "torch":
    from tools.torch import (
      steps as torch_steps,  # only in the PyTorch worker: no torch in the JAX process
    )

    return torch_steps.torch_step(name, config, batch, side), batch, side
  if config is None:
    return jax_classifier_step(name, batch, side), batch, side
  deepfashion = name in ("landmark_attention", "two_stream")  # the others use their own heads
  heads = benchmarking.DEEPFASHION_HEAD_SIZES if deepfashion else (0, 0)
  return jax_system_step(config, *heads), batch, side


def _step_calls(framework: str, name: str, scale: float, batch: int):
  """In the worker: ({"step": one training step}, (batch, input side))."""
  step, batch, side = build_step(framework, name, scale, batch)
  return {"step": step}, (batch, side)


def side_worker(framework: str, name: str, scale: float, batch: int = 0
                ) -> timing_worker.TimingWorker:
  """One framework's step of model `name`, held by a worker process of its own."""
  what = f"{name} ({'JAX' if framework == 'jax' else 'PyTorch'})"
  return timing_worker.TimingWorker(what, _step_calls, framework, name, scale, batch)


def compare(name: str, rounds: int) -> dict:
  """Timed steps of model `name` in JAX, then in PyTorch, each alone in a worker process."""
  times, shape = {}, None
  for framework in ("jax", "torch"):
    print(f"{name}: building the {framework} step ...", flush=True)
    with side_worker(framework, name, FLAGS.scale, FLAGS.batch) as worker:
      if shape and tuple(worker.info) != tuple(shape):  # both sides must do the same work
        raise RuntimeError(f"{worker.what} built batch, side {worker.info}, not {shape}")
      shape = tuple(worker.info)
      worker.time("step"), worker.time("step")  # warm-up
      times[framework] = [worker.time("step") for _ in range(rounds)]
  (batch, side), (jax_s, torch_s) = shape, (float(np.median(times[k])) for k in ("jax", "torch"))
  row = {"model": name, "batch": batch, "input": side, "jax_s": jax_s, "torch_s": torch_s,
         "ratio": jax_s / torch_s, "times": times}
  print(f"{name}: batch {batch} at {side}x{side}: JAX {jax_s:.3f} s, PyTorch {torch_s:.3f} s, "
        f"ratio {jax_s / torch_s:.2f}", flush=True)
  return row


def markdown(rows: list[dict]) -> str:
  import torch

  lines = [f"JAX {jax.__version__} ({jax.devices()[0].device_kind}, XLA_FLAGS "
           f"`{os.environ.get('XLA_FLAGS', '') or '(none)'}`) against PyTorch "
           f"{torch.__version__} eager ({torch.get_num_threads()} threads), each alone in a "
           f"process of its own; float32, Adam; seconds per step, median of {FLAGS.rounds} "
           "steps after two warm-up steps.", "",
           "| model | batch | input | JAX s/step | PyTorch s/step | JAX / PyTorch |",
           "|---|---|---|---|---|---|"]
  lines += [f"| {r['model']} | {r['batch']} | {r['input']}x{r['input']} | {r['jax_s']:#.3g} | "
            f"{r['torch_s']:#.3g} | {r['ratio']:.2f} |" for r in rows]
  return "\n".join(lines) + "\n"


@cli.report_errors
def main(argv):
  del argv
  unknown = sorted(set(FLAGS.models) - set(MODELS))
  if unknown:  # before any worker starts: a typo should not cost the models before it
    raise app.UsageError(f"--models: unknown {', '.join(unknown)} (known: {', '.join(MODELS)})")
  rows = [compare(name, FLAGS.rounds) for name in FLAGS.models]
  table = markdown(rows)
  print(table)
  if FLAGS.out:
    os.makedirs(FLAGS.out, exist_ok=True)
    with open(os.path.join(FLAGS.out, "compare_torch.md"), "w") as f:
      f.write("Command: `python -m tools.compare_torch " + " ".join(sys.argv[1:]) + "`\n\n"
              + table)
    with open(os.path.join(FLAGS.out, "compare_torch.json"), "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
