"""docs/training.md's "Adding a system", done as a user would: one system file and one config
written into a package of their own (no file of fashion_jax touched), then trained, evaluated
and predicted with the one trainer, `--mode=eval` and `fashion_jax.load`."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

import fashion_jax
from fashion_jax import evaluate, train

SYSTEM_FILE = '''
"""A toy sixth system: the garment category from a two-layer CNN."""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from fashion_jax import baselines, losses, metrics, reporting
from fashion_jax.data import image_conventions
from fashion_jax.systems.base import System


class TinyCategoryNet(nn.Module):
  num_categories: int

  @nn.compact
  def __call__(self, batch, train: bool = False):
    x = image_conventions.normalize(batch["image"], jnp.float32)
    x = nn.relu(nn.Conv(8, (3, 3), strides=(2, 2))(x))
    x = jnp.mean(nn.relu(nn.Conv(16, (3, 3), strides=(2, 2))(x)), axis=(1, 2))
    return {"category_logits": nn.Dense(self.num_categories)(x)}


def loss(outputs, batch, loss_cfg):
  del loss_cfg
  ce = losses.softmax_cross_entropy(logits=outputs["category_logits"], labels=batch["category"],
                                    example_mask=batch["valid"] & (batch["category"] >= 0))
  return ce, {"category": ce}


def predict(outputs, batch):
  del batch
  return {"category_scores": nn.softmax(outputs["category_logits"])}


def score(predictions, batch, spec):
  del spec
  return {"category": metrics.top_k_accuracy(scores=predictions["category_scores"],
                                             labels=batch["category"], valid=batch["valid"])}


def report(results):
  return "Toy category accuracy\\n" + reporting.format_table(
      ["top-1", "top-3"], {m: [r["category"]["top1"], r["category"]["top3"]]
                           for m, r in results.items()})


def mean_baseline(truth, spec):
  return {"category_scores": baselines.class_frequencies(
      truth["category"], truth["valid"], spec.num_categories)}


SYSTEM = System(
    name="toy_category", make_module=lambda model_cfg, spec: TinyCategoryNet(spec.num_categories),
    batch_fields=("image", "category", "valid"), labels=("category",), loss=loss,
    predict=predict, score=score, report=report, best_metric=("category/top1", "max"),
    mean_baseline=mean_baseline, picture=lambda batch, predictions: None)
'''

CONFIG_FILE = '''
"""The toy config: python -m fashion_jax.main --config=toy_config.py:runlocal --workdir=W"""

from fashion_jax import config_base


def get_config(arg=None):
  config_base.parse_variants(arg, flags=("runlocal",))
  c = config_base.base_config()
  c.system = "my_systems.toy_category"
  c.batch_size, c.num_devices, c.max_steps_per_phase = 8, 1, 4
  c.data.name, c.data.data_dir = "fashion_synth", {data_dir!r}
  c.data.synth.update({synth!r})
  c.data.image_size, c.data.crop, c.data.num_threads = (32, 32), "bbox", 1
  c.progress, c.log_every_steps = False, 1
  return c
'''


def test_a_sixth_system_in_its_own_package_trains_evaluates_and_predicts(synth_data_dir,
                                                                         tmp_path, monkeypatch):
  from conftest import TINY_SYNTH

  package = tmp_path / "user" / "my_systems"
  package.mkdir(parents=True)
  (package / "__init__.py").write_text("")
  (package / "toy_category.py").write_text(textwrap.dedent(SYSTEM_FILE))
  config_file = tmp_path / "user" / "toy_config.py"
  config_file.write_text(CONFIG_FILE.format(data_dir=synth_data_dir, synth=dict(TINY_SYNTH)))
  monkeypatch.syspath_prepend(str(tmp_path / "user"))
  spec = __import__("importlib").util.spec_from_file_location("toy_config", config_file)
  module = __import__("importlib").util.module_from_spec(spec)
  spec.loader.exec_module(module)

  workdir = str(tmp_path / "run")
  results = train.train_and_evaluate(module.get_config("runlocal"), workdir)
  assert list(results) == ["my_systems.toy_category (step 4)", "untrained", "training mean"]
  for method in results.values():
    assert 0 <= method["category"]["top1"] <= method["category"]["top3"] <= 1
  again = evaluate.evaluate_workdir(workdir)  # --mode=eval: rebuilt from the workdir alone
  assert again["my_systems.toy_category (step 4)"] == results["my_systems.toy_category (step 4)"]
  model = fashion_jax.load(workdir)
  (prediction,) = model.predict([np.full((40, 30, 3), 90, np.uint8)], top_k=2)
  assert len(prediction["category"]) == 2
  assert abs(sum(p for _, p in model.predict([np.zeros((8, 8, 3), np.uint8)],
                                              top_k=50)[0]["category"]) - 1) < 1e-4
  # And from the command line, as a user runs it: the module path is the system's name.
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "user"),
                                                     os.environ.get("PYTHONPATH", "")]),
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-m", "fashion_jax.main", "--mode=eval",
                        f"--workdir={workdir}"], capture_output=True, text=True, timeout=600,
                       env=env, cwd=os.path.dirname(os.path.dirname(__file__)))
  assert out.returncode == 0, out.stderr[-2000:]
  assert "Toy category accuracy" in out.stdout
  saved = json.load(open(os.path.join(workdir, "results_test.json")))
  assert set(saved["methods"]) == set(results)
