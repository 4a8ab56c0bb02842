r"""Train-step time of this package against PyTorch eager on the same machine, side by side.

  python -m tools.compare_torch                       # every model below, 5 rounds
  python -m tools.compare_torch --models=resnet50,vgg16 --rounds=3 --out=DIR
  FASHION_JAX_XLA_OPTIONS=off python -m tools.compare_torch   # without the package's XLA options

Models (float32, Adam, the same batch and input on both sides):
  fpm          the pose machine's paper config: 6 stages, 512x512, batch 5;
  fpm@256      the same at 256x256;
  landmark_attention  the paper config: VGG-16 at 224x224, batch 16, DeepFashion's heads;
  resnet50, vgg16     ImageNet classifiers at 224x224, batch 8 and 16, cross-entropy.
The JAX side of a system is the trainer's own compiled step (tools/benchmarking.compile_step,
its targets and metrics included); the PyTorch side is the same network
(tools/torch_systems.py, tools/torch_reference.py) with the same losses against fixed targets.
Rounds alternate (one JAX step, one PyTorch step, ...) after two warm-up steps each, so a change
in the machine's load hits both; the table gives the medians and their ratio.

Needs torch (`pip install -r requirements-test.txt`). Writes `<out>/compare_torch.md` and
`.json` when `--out` is given.
"""

from __future__ import annotations

import json
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags

from fashion_jax import cli, models, sharding
from tools import benchmarking

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["fpm", "fpm@256", "landmark_attention", "resnet50", "vgg16"],
                  "Models to compare.")
flags.DEFINE_integer("rounds", 5, "Alternating rounds of one step each, after warm-up.")
flags.DEFINE_string("out", "", "Folder for compare_torch.md and compare_torch.json.")
flags.DEFINE_float("scale", 1.0, "Multiply every input side by this (tests use a small one).")


def _config(name: str) -> ml_collections.ConfigDict:
  from configs import fpm, landmark_attention

  if name.startswith("fpm"):
    c = fpm.get_config()
    if name == "fpm@256":
      c.data.image_size = (256, 256)
  else:
    c = landmark_attention.get_config()
  side = int(round(c.data.image_size[0] * FLAGS.scale / 32)) * 32
  c.data.image_size, c.num_devices = (side, side), 1
  return c


def jax_system_step(config, num_categories=50, num_attributes=1000):
  """The trainer's compiled step for `config` (heads: DeepFashion's where it has any)."""
  system = models.get_system(config.system)
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


def torch_step(name: str, config, batch: int, side: int):
  """The PyTorch counterpart's Adam step on fixed random inputs and targets."""
  import torch
  from torch.nn import functional

  from tools import torch_reference, torch_systems

  torch.manual_seed(0)
  images = torch.randn(batch, 3, side, side)
  if name.startswith("fpm"):
    net = torch_systems.PoseMachine(config.model)
    with torch.no_grad():
      target = torch.rand_like(net(images[:1]).expand(-1, batch, -1, -1, -1))
    loss_fn = lambda: ((net(images) - target) ** 2).sum(dim=(2, 3, 4)).mean(dim=1).sum()
  elif name == "landmark_attention":
    net = torch_systems.LandmarkAttention(config.model, 50, 1000)
    heat = torch.rand(batch, 8, side, side)
    category, attributes = torch.randint(0, 50, (batch,)), torch.randint(0, 2, (batch, 1000))
    weights = config.loss.weights

    def loss_fn():
      maps, cat_logits, attr_logits = net(images)
      return (weights.landmarks * functional.mse_loss(maps, heat)
              + weights.category * functional.cross_entropy(cat_logits, category)
              + weights.attributes * functional.binary_cross_entropy_with_logits(
                  attr_logits, attributes.float()))
  else:
    net = torch_reference.build(name).train()
    labels = torch.randint(0, 1000, (batch,))
    loss_fn = lambda: functional.cross_entropy(net(images)["logits"], labels)
  optimizer = torch.optim.Adam(net.parameters(), 1e-4)

  def step():
    optimizer.zero_grad()
    loss_fn().backward()
    optimizer.step()
  return step


def compare(name: str, rounds: int) -> dict:
  """Alternating timed rounds of the JAX and PyTorch steps of model `name`."""
  if name in ("resnet50", "vgg16"):
    config, batch, side = None, (8 if name == "resnet50" else 16), int(224 * FLAGS.scale)
    jax_step = jax_classifier_step(name, batch, side)
  elif name in ("fpm", "fpm@256", "landmark_attention"):
    config = _config(name)
    batch, side = config.batch_size, config.data.image_size[0]
    jax_step = jax_system_step(config)
  else:
    raise app.UsageError(f"--models: unknown {name!r}")
  other = torch_step(name, config, batch, side)
  times = {"jax": [], "torch": []}
  for fn in (jax_step, jax_step, other, other):  # warm-up
    fn()
  for _ in range(rounds):
    for key, fn in (("jax", jax_step), ("torch", other)):
      times[key].append(benchmarking.time_rounds(fn, 1, 1)[0][0])
  jax_s, torch_s = (float(np.median(times[k])) for k in ("jax", "torch"))
  row = {"model": name, "batch": batch, "input": side, "jax_s": jax_s, "torch_s": torch_s,
         "ratio": jax_s / torch_s, "times": times}
  print(f"{name}: batch {batch} at {side}x{side}: JAX {jax_s:.3f} s, PyTorch {torch_s:.3f} s, "
        f"ratio {jax_s / torch_s:.2f}", flush=True)
  return row


def markdown(rows: list[dict]) -> str:
  import torch

  lines = [f"JAX {jax.__version__} ({jax.devices()[0].device_kind}, XLA_FLAGS "
           f"`{os.environ.get('XLA_FLAGS', '') or '(none)'}`) against PyTorch "
           f"{torch.__version__} eager ({torch.get_num_threads()} threads); float32, Adam; "
           f"seconds per step, median of {FLAGS.rounds} alternating rounds.", "",
           "| model | batch | input | JAX s/step | PyTorch s/step | JAX / PyTorch |",
           "|---|---|---|---|---|---|"]
  lines += [f"| {r['model']} | {r['batch']} | {r['input']}x{r['input']} | {r['jax_s']:.3g} | "
            f"{r['torch_s']:.3g} | {r['ratio']:.2f} |" for r in rows]
  return "\n".join(lines) + "\n"


@cli.report_errors
def main(argv):
  del argv
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
