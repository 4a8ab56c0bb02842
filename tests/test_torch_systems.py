"""tools/torch_systems: the PyTorch timing counterparts are the JAX systems' networks."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch comes with requirements-test.txt")

from configs import fpm, landmark_attention, mtct, sister  # noqa: E402
from fashion_jax import models  # noqa: E402
from fashion_jax.data import schema  # noqa: E402
from fashion_jax.models import mtct as mtct_model  # noqa: E402
from tools import benchmarking, torch_systems  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NUM_SISTER_OUTPUTS = len(schema.DCSA_BINARY_LABELS) + sum(
    len(v) for v in schema.DCSA_MULTICLASS_LABELS.values())  # 23 binary; 7, 3, 3 classes


def jax_parameter_count(config, spec) -> int:
  system = models.get_system(config.system)
  module = system.make_module(config.model, spec)
  batch = benchmarking.fake_batch(config.data, system, spec, 1)
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), batch, train=False))
  return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(shapes["params"])))


def torch_parameter_count(net) -> int:
  return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name", ["fpm", "landmark_attention", "sister", "mtct"])
def test_paper_config_counterparts_have_the_same_parameters(name):
  # Same layers, widths and heads on both sides: the trainable parameter counts agree exactly
  # (batch-norm running statistics are buffers in torch and batch_stats in flax, not counted).
  config = {"fpm": fpm, "landmark_attention": landmark_attention, "sister": sister,
            "mtct": mtct}[name].get_config()
  if name == "landmark_attention":
    spec = benchmarking.benchmark_spec(config, 50, 1000)
    net = torch_systems.LandmarkAttention(config.model, 50, 1000)
  else:
    spec = benchmarking.benchmark_spec(config)
    net = {"fpm": lambda: torch_systems.PoseMachine(config.model),
           "sister": lambda: torch_systems.SisterNetA(config.model, NUM_SISTER_OUTPUTS),
           "mtct": lambda: torch_systems.MultiTaskNetwork(
               config.model, mtct_model.check_groups(spec))}[name]()
  assert torch_parameter_count(net) == jax_parameter_count(config, spec)


def test_counterparts_reject_what_they_do_not_build():
  with pytest.raises(ValueError, match="Sister-A on ResNet-50"):
    torch_systems.SisterNetA(sister.get_config("baseline").model, NUM_SISTER_OUTPUTS)
  with pytest.raises(ValueError, match="paper config's NIN"):
    torch_systems.MultiTaskNetwork(mtct.get_config("runlocal").model, (3, 4))


@pytest.mark.parametrize("name", ["sister", "mtct"])
def test_torch_step_runs_and_learns(name):
  # compare_torch's PyTorch side of a system at toy size: its loss falls over steps.
  # (A subprocess: importing the tool here would define its flags beside other tools'.)
  code = (
      "import torch\n"
      f"from configs import {name}\n"
      "from tools import compare_torch\n"
      f"step = compare_torch.torch_step('{name}', {name}.get_config(), 4, 32)\n"
      "losses = [step() for _ in range(5)]\n"
      "print('LOSSES', *losses)\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  losses = [float(v) for v in out.stdout.split("LOSSES")[1].split()]
  assert len(losses) == 5 and all(np.isfinite(losses))
  assert losses[-1] < losses[0]
