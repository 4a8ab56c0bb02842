"""Landmark-driven attention network: the paper's sizes, loss masking, ablation, training."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import landmark_attention as lda_config
from fashion_jax import train
from fashion_jax.data import schema
from fashion_jax.systems import deepfashion, landmark_attention

SPEC = schema.DatasetSpec(category_names=tuple(f"c{i}" for i in range(50)),
                          attribute_names=tuple(f"a{i}" for i in range(1000)),
                          attribute_groups=tuple(i % 5 for i in range(1000)),
                          attribute_group_names=("texture", "fabric", "shape", "part", "style"))


def _shapes(tree):
  return jax.tree.map(lambda x: tuple(x.shape), tree)


def test_paper_sizes_at_224():
  model = landmark_attention.make_module(lda_config.get_config().model, SPEC)
  batch = {"image": jnp.zeros((1, 224, 224, 3), jnp.uint8)}
  out, state = jax.eval_shape(lambda: model.init_with_output(
      jax.random.PRNGKey(0), batch, train=False, capture_intermediates=True,
      mutable=["params", "intermediates"]))
  inter = state["intermediates"]
  conv4_3 = inter["backbone"]["__call__"][0]["conv4_3"]
  heatmaps, taps = inter["landmark_branch"]["__call__"][0]
  attention, squeezed = inter["attention_branch"]["__call__"][0]
  assert conv4_3.shape == (1, 28, 28, 512)
  assert taps["reduce"].shape == (1, 28, 28, 64) and taps["up1"].shape == (1, 56, 56, 64)
  assert taps["up3"].shape == (1, 224, 224, 16) and heatmaps.shape == (1, 224, 224, 8)
  assert squeezed.shape[1:3] == (7, 7) and attention.shape == (1, 28, 28, 512)
  assert _shapes(out)["category_logits"] == (1, 50)
  assert _shapes(out)["attribute_logits"] == (1, 1000)


def test_no_attention_variant_is_plain_multitask_vgg():
  model = landmark_attention.make_module(lda_config.get_config("no_attention").model, SPEC)
  params = jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), {"image": jnp.zeros((1, 224, 224, 3), jnp.uint8)}))["params"]
  assert "attention_branch" not in params and "landmark_branch" in params


def test_masked_labels_contribute_no_loss_and_no_gradient():
  rng = np.random.default_rng(0)
  batch = {"image": np.zeros((2, 16, 16, 3), np.uint8),
           "landmarks": rng.uniform(2, 14, (2, 8, 2)).astype(np.float32),
           "landmarks_visibility": np.array([[1, 0, 2, -1, 1, 1, 1, 1]] * 2, np.int8),
           "category": np.array([3, -1], np.int32),
           "attributes": np.array([[1, 0, -1], [0, -1, 1]], np.int8),
           "valid": np.array([True, True])}
  outputs = {"landmark_heatmaps": jnp.asarray(rng.normal(size=(2, 16, 16, 8)), jnp.float32),
             "category_logits": jnp.asarray(rng.normal(size=(2, 5)), jnp.float32),
             "attribute_logits": jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)}
  cfg = lda_config.get_config().loss
  grads = jax.grad(lambda o: deepfashion.loss(o, batch, cfg)[0])(outputs)
  heat = np.abs(np.asarray(grads["landmark_heatmaps"])).sum(axis=(1, 2))  # [B, 8]
  assert np.all(heat[:, 1:4] == 0) and np.all(heat[:, [0, 4]] > 0)  # occluded/trunc/absent
  assert np.all(np.asarray(grads["category_logits"])[1] == 0)  # missing category
  attr = np.asarray(grads["attribute_logits"])
  assert attr[0, 2] == 0 and attr[1, 1] == 0 and attr[0, 0] != 0  # unknown attributes
  # Changing what a masked map or label predicts leaves the loss unchanged.
  moved = dict(outputs, landmark_heatmaps=outputs["landmark_heatmaps"].at[:, :, :, 2].add(5.0))
  assert float(deepfashion.loss(moved, batch, cfg)[0]) == pytest.approx(
      float(deepfashion.loss(outputs, batch, cfg)[0]), rel=1e-6)


@pytest.fixture
def tiny_lda_config(synth_data_dir):
  from conftest import TINY_SYNTH

  c = lda_config.get_config("runlocal")
  c.data.name = "fashion_synth"
  c.data.data_dir = synth_data_dir
  c.data.synth.update(TINY_SYNTH)
  c.data.image_size = (32, 32)
  c.data.num_threads = 1
  c.model.update(dict(vgg_widths=(4, 8, 8, 16, 16), fc_width=32, landmark_widths=(8, 8, 8, 8),
                      squeeze_widths=(8, 8), expand_width=8))
  c.batch_size, c.num_devices, c.log_every_steps, c.progress = 8, 1, 1, False
  c.eval_every_epochs = 100.0
  c.eval.baselines = ("untrained",)
  return c


def test_short_training_run_lowers_the_loss_and_reports_every_metric(tiny_lda_config, tmp_path):
  """72 steps on 48 toy images through the one trainer: the weighted loss and its attribute term
  fall, attribute recall beats the untrained model, and the final evaluation fills Tables 1-2.

  A run this short learns label priors, not categories or landmarks from pixels; that the model
  learns every task is shown at CPU scale by `configs/landmark_attention.py:runlocal`."""
  tiny_lda_config.num_epochs = 12.0
  workdir = str(tmp_path / "lda")
  results = train.train_and_evaluate(tiny_lda_config, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [r for r in map(json.loads, f) if r["split"] == "train"]
  assert [r["step"] for r in rows] == list(range(1, 73))
  for term in ("loss", "loss/attributes"):
    first, last = (np.mean([r[term] for r in part]) for part in (rows[:6], rows[-12:]))
    assert last < 0.9 * first, (term, first, last)
  trained, untrained = results.values()
  assert trained["attributes"]["all"]["top3"] > untrained["attributes"]["all"]["top3"]
  for method in results.values():
    assert np.isfinite(method["landmarks"]["mean"])
    assert all(np.isfinite(method["category"][f"top{k}"]) for k in (1, 3, 5))
    assert set(method["attributes"]) == {"texture", "fabric", "shape", "part", "style", "all"}


def test_the_upsampling_is_torchs_transposed_convolution_with_flaxs_parameters():
  """layers.Upsample2x against Flax's own nn.ConvTranspose (same parameters, outputs and
  gradients) and against torch's ConvTranspose2d(k=4, s=2, p=1), on an odd-sized input."""
  import flax.linen as nn

  from fashion_jax.models import layers

  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 7, 3)), jnp.float32)
  reference = nn.ConvTranspose(4, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))
  upsample = layers.Upsample2x(4)
  variables = upsample.init(jax.random.PRNGKey(0), x)
  assert _shapes(variables) == _shapes(reference.init(jax.random.PRNGKey(0), x))
  rng = np.random.default_rng(1)
  variables = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape), a.dtype),
                           variables)
  got, want = upsample.apply(variables, x), reference.apply(variables, x)
  assert got.shape == (2, 10, 14, 4)
  np.testing.assert_allclose(got, want, atol=1e-5)
  loss = lambda module: lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))
  for a, b in zip(jax.tree.leaves(jax.grad(loss(upsample), (0, 1))(variables, x)),
                  jax.tree.leaves(jax.grad(loss(reference), (0, 1))(variables, x)), strict=True):
    np.testing.assert_allclose(a, b, atol=1e-4)
  torch = pytest.importorskip("torch")
  deconv = torch.nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1)
  with torch.no_grad():  # Flax correlates the dilated input: torch's kernel flipped
    kernel = np.asarray(variables["params"]["kernel"])[::-1, ::-1].transpose(2, 3, 0, 1)
    deconv.weight.copy_(torch.from_numpy(kernel.copy()))
    deconv.bias.copy_(torch.from_numpy(np.asarray(variables["params"]["bias"])))
    out = deconv(torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy()))
  np.testing.assert_allclose(got, out.numpy().transpose(0, 2, 3, 1), atol=1e-5)
