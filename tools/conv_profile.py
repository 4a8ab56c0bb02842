r"""Where a model's train step spends its convolution time: every distinct convolution of the
forward pass, timed alone for its forward, input-gradient and weight-gradient passes, in JAX
(XLA, with the package's options) and in PyTorch eager on the same machine.

  python -m tools.conv_profile --config=configs/fpm.py --image_size=256 --out=DIR
  python -m tools.conv_profile --config=configs/landmark_attention.py --config.batch_size=8

The convolutions are read from the model's jaxpr (one `lax.conv_general_dilated` per layer, or a
channel product for a 1x1 one, as the trainer calls it) and grouped by shape; each pass of each
group is timed after a warm-up call, medians reported, and weighted by how often the group
occurs. Every JAX pass runs in one worker process, then every PyTorch pass in another
(tools/timing_worker.py): an earlier version alternated the two in one process, and its ratios
(ResNet-50's input gradients 1.44x) disagreed with the same passes timed alone (even). A layer
fed by the image itself (3 input channels: the image or a resize of it) has no input gradient
in training (neither framework computes it), so its column is left empty and out of the totals.
Only plain NHWC convolutions are profiled (no input dilation, one feature group); others are
counted and listed as skipped. Needs torch (`pip install -r requirements-test.txt`).
"""

from __future__ import annotations

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from fashion_jax import cli
from fashion_jax.ops import convolution
from fashion_jax.tools import benchmarking
from tools import timing_worker

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/fpm.py", "Config file, optionally "
                                "`path:variant`.")
flags.DEFINE_integer("image_size", 0, "Square input side (0: the config's).")
flags.DEFINE_integer("rounds", 3, "Timed calls per pass and framework, after one warm-up.")
flags.DEFINE_string("out", "", "Folder for conv_profile.md and conv_profile.json.")

PASSES = ("forward", "input grad", "weight grad")
_NHWC = benchmarking.NHWC


def jax_passes(lhs, rhs, strides, padding) -> dict:
  """{pass: zero-argument callable running it once} for one convolution in JAX."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(lhs), jnp.float32)
  w = jnp.asarray(rng.standard_normal(rhs) * 0.01, jnp.float32)
  # As the models compute it: 1x1 convolutions as channel products (ops.convolution).
  conv = lambda x, w: convolution.conv_general_dilated(x, w, strides, padding,
                                                       dimension_numbers=_NHWC)
  g = jnp.asarray(rng.standard_normal(jax.eval_shape(conv, x, w).shape), jnp.float32)
  forward = jax.jit(conv)
  input_grad = jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0])
  weight_grad = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
  return {"forward": lambda: jax.block_until_ready(forward(x, w)),
          "input grad": lambda: jax.block_until_ready(input_grad(x, w, g)),
          "weight grad": lambda: jax.block_until_ready(weight_grad(x, w, g))}


def torch_passes(lhs, rhs, strides, padding) -> dict:
  """The same three passes in PyTorch eager (NCHW); a gradient pass runs on a graph built
  once outside the timing, so it is the backward alone (XLA drops the unused forward too)."""
  import torch
  import torch.nn.functional as F

  rng = np.random.default_rng(0)
  x = torch.from_numpy(rng.standard_normal(lhs).astype(np.float32)).permute(0, 3, 1, 2)
  w = torch.from_numpy((rng.standard_normal(rhs) * 0.01).astype(np.float32)).permute(3, 2, 0, 1)
  x, w = x.contiguous().requires_grad_(True), w.contiguous().requires_grad_(True)
  pad = (padding[1][0], padding[1][1], padding[0][0], padding[0][1])  # F.pad: last dim first
  conv = lambda x, w: F.conv2d(F.pad(x, pad) if any(pad) else x, w, stride=strides)
  out = conv(x, w)
  g = torch.randn_like(out)

  def forward():
    with torch.no_grad():
      conv(x, w)

  return {"forward": forward,
          "input grad": lambda: torch.autograd.grad(out, x, g, retain_graph=True),
          "weight grad": lambda: torch.autograd.grad(out, w, g, retain_graph=True)}


class _GroupPasses:
  """`calls["i/pass"]` of the worker: builds the passes of convolution group i on first use,
  dropping the previous group's (a pose machine's groups' inputs would not all fit at once)."""

  def __init__(self, framework: str, keys: list):
    self.build = jax_passes if framework == "jax" else torch_passes
    self.keys, self.index, self.passes = keys, None, {}

  def __getitem__(self, name: str):
    index, pass_name = name.split("/", 1)
    if index != self.index:
      self.passes, self.index = {}, None  # free the old inputs before making the new ones
      self.passes, self.index = self.build(*self.keys[int(index)]), index
    return self.passes[pass_name]


def _pass_calls(framework: str, keys: list):
  return _GroupPasses(framework, keys), None


def time_passes(framework: str, keys: list, rounds: int) -> list[dict]:
  """[{pass: median seconds, or None for an input gradient nobody computes}] per group, timed in
  a worker process of `framework` ("jax" or "torch") alone: one warm-up call, then `rounds`."""
  label = "JAX" if framework == "jax" else "PyTorch"
  rows = []
  with timing_worker.TimingWorker(f"conv_profile ({label})", _pass_calls, framework,
                                  keys) as worker:
    for i, key in enumerate(keys):
      from_image = key[0][-1] == 3  # RGB in: fed by an image (or its resize), no input grad
      row = {}
      for name in PASSES:
        if name == "input grad" and from_image:
          row[name] = None
          continue
        worker.time(f"{i}/{name}")  # warm-up (compiles the JAX pass)
        row[name] = float(np.median([worker.time(f"{i}/{name}") for _ in range(rounds)]))
      rows.append(row)
      print(f"{label} {i + 1}/{len(keys)} {benchmarking.describe_convolution(key)}: " + ", ".join(
          f"{p} {t:.4f}" for p, t in row.items() if t is not None), flush=True)
  return rows


def markdown(rows: list[dict], skipped: int, command: str) -> str:
  lines = [f"Command: `{command}`", "",
           f"JAX {jax.__version__} ({jax.devices()[0].device_kind}, XLA_FLAGS "
           f"`{os.environ.get('XLA_FLAGS', '') or '(none)'}`) against PyTorch eager; float32; "
           f"seconds per call, median of {FLAGS.rounds} calls, each framework alone in a worker "
           "process; x N: how many "
           "layers of that shape the model has.", "",
           "| convolution | x N | " + " | ".join(f"{p} JAX | {p} PyTorch | ratio" for p in PASSES)
           + " |", "|---|---:|" + "---:|" * (3 * len(PASSES))]
  totals = {p: {"jax": 0.0, "torch": 0.0} for p in PASSES}
  for r in rows:
    cells = []
    for p in PASSES:
      t = r["passes"][p]
      if t is None:
        cells += ["", "", ""]
        continue
      cells += [f"{t['jax']:.3f}", f"{t['torch']:.3f}", f"{t['jax'] / t['torch']:.2f}"]
      for side in t:
        totals[p][side] += r["count"] * t[side]
    lines.append(f"| {r['convolution']} | {r['count']} | " + " | ".join(cells) + " |")
  cells = [c for p in PASSES for c in (f"**{totals[p]['jax']:.2f}**",
                                       f"**{totals[p]['torch']:.2f}**",
                                       f"{totals[p]['jax'] / max(totals[p]['torch'], 1e-9):.2f}")]
  lines.append("| **weighted total** | | " + " | ".join(cells) + " |")
  jax_all = sum(t["jax"] for t in totals.values())
  torch_all = sum(t["torch"] for t in totals.values())
  lines += ["", f"All passes: JAX {jax_all:.2f} s, PyTorch {torch_all:.2f} s "
            f"(ratio {jax_all / max(torch_all, 1e-9):.2f})."
            + (f" {skipped} convolutions not profiled (dilated or grouped)." if skipped else "")]
  return "\n".join(lines) + "\n"


@cli.report_errors
def main(argv):
  del argv
  config = FLAGS.config
  if FLAGS.image_size:
    config.data.image_size = (FLAGS.image_size, FLAGS.image_size)
  found, skipped, _ = benchmarking.model_convolutions(config)
  keys = list(found)
  sides = {side: time_passes(side, keys, FLAGS.rounds) for side in ("jax", "torch")}
  rows = [{"convolution": benchmarking.describe_convolution(key), "count": found[key],
           "passes": {p: None if sides["jax"][i][p] is None else
                      {side: sides[side][i][p] for side in sides} for p in PASSES}}
          for i, key in enumerate(keys)]
  table = markdown(rows, skipped, "python -m tools.conv_profile " + " ".join(sys.argv[1:]))
  print(table)
  if FLAGS.out:
    os.makedirs(FLAGS.out, exist_ok=True)
    with open(os.path.join(FLAGS.out, "conv_profile.md"), "w") as f:
      f.write(table)
    with open(os.path.join(FLAGS.out, "conv_profile.json"), "w") as f:
      json.dump({"rows": rows, "skipped": skipped}, f, indent=1)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
