"""Weight import mechanics on a tiny model and a hand-written torch state dict (no torch needed)."""

import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

from fashion_jax.models import layers, weights
from fashion_jax.tools import convert_weights

TORCH_NAMES = {"conv": "features.0", "bn": "features.1", "fc": "head"}


class Tiny(nn.Module):
  """conv 3x3 (2 -> 4) + BN + channel-first flatten + Dense(3): [B, 2, 2, 2] -> [B, 3]."""
  with_head: bool = True

  @nn.compact
  def __call__(self, x, train):
    x = nn.Conv(4, (3, 3), padding=1, use_bias=False, name="conv")(x)
    x = layers.TorchBatchNorm(use_running_average=not train, name="bn")(x)
    return nn.Dense(3, name="fc")(layers.flatten_channels_first(x)) if self.with_head else x


class System(nn.Module):
  """A larger model holding Tiny (headless) under "backbone" plus a head of its own."""

  @nn.compact
  def __call__(self, x, train):
    return nn.Dense(5, name="head")(Tiny(with_head=False, name="backbone")(x, train).sum((1, 2)))


def _template(module=None):
  x = jax.ShapeDtypeStruct((1, 2, 2, 2), jnp.float32)
  return jax.eval_shape(lambda x: (module or Tiny()).init(jax.random.key(0), x, train=False), x)


def _state_dict():
  """What torch's Conv2d(2, 4, 3, bias=False), BatchNorm2d(4), Linear(16, 3) would save."""
  return {
      "features.0.weight": np.arange(4 * 2 * 3 * 3, dtype=np.float32).reshape(4, 2, 3, 3),
      "features.1.weight": np.array([1.0, 2.0, 3.0, 4.0], np.float32),
      "features.1.bias": np.array([0.1, 0.2, 0.3, 0.4], np.float32),
      "features.1.running_mean": np.array([5.0, 6.0, 7.0, 8.0], np.float32),
      "features.1.running_var": np.array([9.0, 10.0, 11.0, 12.0], np.float32),
      "features.1.num_batches_tracked": np.array(7, np.int64),
      "head.weight": np.arange(3 * 16, dtype=np.float32).reshape(3, 16),
      "head.bias": np.array([-1.0, -2.0, -3.0], np.float32),
  }


def _convert(state_dict, **kwargs):
  return weights.torch_to_flax(state_dict, _template(), lambda path: TORCH_NAMES[path[0]],
                               **kwargs)


def test_layouts_are_transposed_and_bn_names_mapped():
  sd = _state_dict()
  v = _convert(sd)
  kernel = v["params"]["conv"]["kernel"]
  assert kernel.shape == (3, 3, 2, 4)
  assert kernel[2, 0, 1, 3] == sd["features.0.weight"][3, 1, 2, 0]  # [h, w, i, o] = [o, i, h, w]
  np.testing.assert_array_equal(v["params"]["fc"]["kernel"], sd["head.weight"].T)
  np.testing.assert_array_equal(v["params"]["fc"]["bias"], sd["head.bias"])
  np.testing.assert_array_equal(v["params"]["bn"]["scale"], [1, 2, 3, 4])
  np.testing.assert_array_equal(v["params"]["bn"]["bias"], sd["features.1.bias"])
  np.testing.assert_array_equal(v["batch_stats"]["bn"]["mean"], [5, 6, 7, 8])
  np.testing.assert_array_equal(v["batch_stats"]["bn"]["var"], [9, 10, 11, 12])


def test_converted_variables_do_not_alias_the_state_dict():
  sd = _state_dict()
  v = _convert(sd)
  sd["features.1.running_mean"] += 100.0  # as torch does in place to BN buffers when training
  np.testing.assert_array_equal(v["batch_stats"]["bn"]["mean"], [5, 6, 7, 8])


def test_converted_model_computes_what_torch_would():
  sd = _state_dict()
  x = np.random.default_rng(0).normal(size=(1, 2, 2, 2)).astype(np.float32)
  got = Tiny().apply(_convert(sd), x, train=False)
  # torch semantics by hand: conv (zero pad 1) in NCHW, eval BN, flatten C-H-W, x W^T + b.
  xp = np.pad(x.transpose(0, 3, 1, 2), ((0, 0), (0, 0), (1, 1), (1, 1)))
  w = sd["features.0.weight"]
  conv = np.zeros((1, 4, 2, 2), np.float64)
  for h in range(2):
    for col in range(2):
      conv[0, :, h, col] = np.einsum("oikl,ikl->o", w, xp[0, :, h:h + 3, col:col + 3])
  mean, var = sd["features.1.running_mean"], sd["features.1.running_var"]
  bn = ((conv - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
        * sd["features.1.weight"][:, None, None] + sd["features.1.bias"][:, None, None])
  want = bn.reshape(1, -1) @ sd["head.weight"].T + sd["head.bias"]
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_conv_shaped_linear_weight_and_renamed_keys_are_accepted():
  # timm stores VGG's classifier as convs ([out, C, H, W]) under other names.
  sd = _state_dict()
  sd["pre.fc.weight"] = sd.pop("head.weight").reshape(3, 4, 2, 2)
  sd["pre.fc.bias"] = sd.pop("head.bias")
  v = _convert(sd, renames={"pre.fc": "head"})
  np.testing.assert_array_equal(v["params"]["fc"]["kernel"], _state_dict()["head.weight"].T)


def test_every_problem_is_listed_in_one_error():
  sd = _state_dict()
  del sd["features.1.running_var"]
  sd["features.9.weight"] = np.zeros(2, np.float32)
  sd["head.weight"] = np.zeros((3, 15), np.float32)
  with pytest.raises(weights.WeightImportError) as error:
    _convert(sd, source="tiny.safetensors")
  message = str(error.value)
  assert message.startswith("cannot import tiny.safetensors: 1 missing, 1 unexpected, "
                            "1 mis-shaped")
  assert "features.1.running_var (for batch_stats/bn/var (4,))" in message
  assert "features.9.weight (2,)" in message
  assert "head.weight (3, 15) -> params/fc/kernel expects (16, 3)" in message
  assert "num_batches_tracked" not in message  # BN's step counter is not an error


def test_save_load_round_trip_and_foreign_files(tmp_path):
  v = _convert(_state_dict())
  path = tmp_path / "tiny.safetensors"
  weights.save_variables(path, v, metadata={"backbone": "tiny"})
  back = weights.load_variables(path)
  jax.tree.map(np.testing.assert_array_equal, back, v)
  raw = tmp_path / "raw.safetensors"  # a torch state dict, not converted
  safetensors.numpy.save_file(_state_dict(), str(raw))
  with pytest.raises(ValueError, match="raw.safetensors: not a fashion_jax variables file"):
    weights.load_variables(raw)
  assert weights.read_state_dict(raw)["head.bias"].tolist() == [-1.0, -2.0, -3.0]
  with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
    weights.read_state_dict(tmp_path / "nowhere.safetensors")
  with pytest.raises(ValueError, match="unknown weights format"):
    (tmp_path / "w.h5").write_bytes(b"")
    weights.read_state_dict(tmp_path / "w.h5")


def test_pth_without_torch_says_how_to_proceed(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
  (tmp_path / "r50.pth").write_bytes(b"not read")
  with pytest.raises(ImportError, match=r"r50.pth: reading a torch pickle needs torch"):
    weights.read_state_dict(tmp_path / "r50.pth")


@pytest.fixture
def system_and_file(tmp_path):
  x = jnp.ones((1, 2, 2, 2))
  variables = System().init(jax.random.key(0), x, train=False)
  path = tmp_path / "tiny.safetensors"
  weights.save_variables(path, _convert(_state_dict()))  # includes Tiny's "fc" head
  return variables, path


def test_load_pretrained_replaces_only_the_backbone(system_and_file):
  variables, path = system_and_file
  loaded = weights.load_pretrained(variables, path, at="backbone", allow_unused=["fc"])
  np.testing.assert_array_equal(loaded["batch_stats"]["backbone"]["bn"]["var"], [9, 10, 11, 12])
  np.testing.assert_array_equal(loaded["params"]["backbone"]["conv"]["kernel"],
                                _convert(_state_dict())["params"]["conv"]["kernel"])
  np.testing.assert_array_equal(loaded["params"]["head"]["kernel"],
                                variables["params"]["head"]["kernel"])
  assert loaded["params"]["backbone"]["bn"]["scale"].dtype == jnp.float32


def test_load_pretrained_lists_every_mismatch(system_and_file, tmp_path):
  variables, path = system_and_file
  with pytest.raises(weights.WeightImportError) as error:
    weights.load_pretrained(variables, path, at="backbone")  # the head is not allowed away
  assert str(error.value).endswith("0 missing, 2 unexpected, 0 mis-shaped\n  unexpected:\n"
                                   "    params/fc/bias (3,)\n    params/fc/kernel (16, 3)")
  broken = weights.load_variables(path)
  broken["params"]["bn"]["scale"] = np.zeros(5, np.float32)
  del broken["batch_stats"]
  weights.save_variables(tmp_path / "broken.safetensors", broken)
  with pytest.raises(weights.WeightImportError) as error:
    weights.load_pretrained(variables, tmp_path / "broken.safetensors", at="backbone",
                            allow_unused=["fc"])
  message = str(error.value)
  assert "2 missing, 0 unexpected, 1 mis-shaped" in message
  assert "batch_stats/bn/mean" in message and "batch_stats/bn/var" in message
  assert "params/bn/scale: file (5,), model (4,)" in message
  with pytest.raises(weights.WeightImportError, match="no sub-tree 'encoder'.*'backbone'"):
    weights.load_pretrained(variables, path, at="encoder")


def test_convert_tool_reports_every_bad_key_and_fails(tmp_path, capsys):
  source = tmp_path / "not_resnet18.safetensors"
  safetensors.numpy.save_file(_state_dict(), str(source))
  code = convert_weights.main(["--backbone", "resnet18", "--input", str(source),
                               "--output", str(tmp_path / "out.safetensors")])
  error = capsys.readouterr().err
  assert code == 1 and not (tmp_path / "out.safetensors").exists()
  assert f"error: cannot import {source} as resnet18: 102 missing, 7 unexpected" in error
  assert "layer4.1.bn2.running_var (for batch_stats/layer4_1/bn2/var (512,))" in error
  assert "head.weight (3, 16)" in error
