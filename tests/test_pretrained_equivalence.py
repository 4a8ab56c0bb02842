"""Converted torch weights give the torch model's outputs: logits and every named tap.

The references are randomly initialised torch.nn models in the torchvision layout
(tools/torch/reference.py), with random BN statistics so that every converted tensor matters.
Inputs are small (64x64; VGG's adaptive pool then averages overlapping bins of a 2x2 map up to
7x7, exactly as torchvision does) to keep the file affordable on two CPU cores.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

torch = pytest.importorskip(
    "torch", reason="torch is not installed (pip install -r requirements-test.txt brings it)")

from fashion_jax.data import image_conventions  # noqa: E402
from fashion_jax.models import backbones, layers, weights  # noqa: E402
from fashion_jax.tools import convert_weights  # noqa: E402  (torch_reference needs torch)
from tools.torch import reference as torch_reference  # noqa: E402  (torch_reference needs torch)

TOLERANCE = 1e-4  # max |flax - torch| / max |torch|, per tap


def _relative_error(got, want):
  return float(np.abs(np.asarray(got, np.float64) - want).max() / np.abs(want).max())


def _images(batch=1, size=64, seed=0):
  """(NHWC float32 for Flax, NCHW tensor for torch) of the same normalised random images."""
  pixels = np.random.default_rng(seed).integers(0, 256, (batch, size, size, 3), np.uint8)
  x = image_conventions.normalize(pixels, np.float32)
  return x, torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def _state_dict(model):
  return {k: v.numpy() for k, v in model.state_dict().items()}


@functools.lru_cache(maxsize=1)  # VGG's reference and variables serve three tests in a row
def _reference_and_variables(name):
  reference = torch_reference.build(name)
  return reference, backbones.convert_state_dict(name, _state_dict(reference))


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                  "vgg16_bn", "vgg16"])  # vgg16 last: the next tests reuse it
def test_converted_backbone_matches_torch(name):
  reference, variables = _reference_and_variables(name)
  x, x_torch = _images()
  with torch.no_grad():
    want = {k: torch_reference.nhwc(v) for k, v in reference(x_torch).items()}
  got = backbones.get(name).build().apply(variables, x, train=False)
  assert set(got) == set(want)
  errors = {k: _relative_error(got[k], want[k]) for k in want}
  assert max(errors.values()) < TOLERANCE, errors


def test_vgg16_runs_on_from_a_modified_conv4_3_like_torch():
  # The landmark-attention network: F_new = (1/2 + A) * conv4_3, then the rest of VGG-16.
  reference, variables = _reference_and_variables("vgg16")
  x, x_torch = _images(seed=1)
  model = backbones.get("vgg16").build()
  conv4_3 = model.apply(variables, x, train=False, stop_at="conv4_3")["conv4_3"]
  attention = np.random.default_rng(2).uniform(size=conv4_3.shape).astype(np.float32)
  rest = model.apply(variables, (0.5 + attention) * conv4_3, train=False, start_after="conv4_3")
  cut = reference.tap_names.index("conv4_3") + 1
  with torch.no_grad():
    features = reference.features[:cut](x_torch)
    features = features * torch.from_numpy(0.5 + attention.transpose(0, 3, 1, 2))
    features = torch.flatten(reference.avgpool(reference.features[cut:](features)), 1)
    want = reference.classifier(features).numpy()
  assert _relative_error(rest["logits"], want) < TOLERANCE


def test_timm_vgg16_state_dict_converts_to_the_same_variables():
  reference, variables = _reference_and_variables("vgg16")
  reference_state = _state_dict(reference)
  # timm's VGG: torchvision's classifier renamed and stored as 7x7 and 1x1 convs.
  timm_names = {"classifier.0": ("pre_logits.fc1", (-1, 512, 7, 7)),
                "classifier.3": ("pre_logits.fc2", (-1, 4096, 1, 1)),
                "classifier.6": ("head.fc", None)}
  timm_state = {}
  for key, value in reference_state.items():
    module, leaf = key.rsplit(".", 1)
    new_module, shape = timm_names.get(module, (module, None))
    reshape = shape is not None and leaf == "weight"
    timm_state[f"{new_module}.{leaf}"] = value.reshape(shape) if reshape else value
  converted = backbones.convert_state_dict("vgg16", timm_state)
  jax.tree.map(np.testing.assert_array_equal, converted, variables)


def test_training_mode_matches_torch_and_documents_the_running_var_difference():
  reference = torch_reference.build("resnet18")  # its own: training changes its statistics
  variables = backbones.convert_state_dict("resnet18", _state_dict(reference))
  # 64x64 leaves 2x2x2 values per channel for layer4's batch statistics; fewer make train-mode
  # BN ill-conditioned (its output then amplifies float rounding in both frameworks).
  x, x_torch = _images(batch=2, size=64, seed=3)
  before = reference.bn1.running_var.clone().numpy()
  with torch.no_grad():
    want = reference.train()(x_torch)["logits"].numpy()
  got, updates = backbones.get("resnet18").build().apply(
      variables, x, train=True, mutable=["batch_stats"])
  assert _relative_error(got["logits"], want) < TOLERANCE
  stats = updates["batch_stats"]["bn1"]
  np.testing.assert_allclose(stats["mean"], reference.bn1.running_mean.numpy(), atol=1e-5)
  # torch's running_var takes the unbiased batch variance, Flax's the biased one (n = B*H*W).
  n = 2 * 32 * 32  # conv1 outputs per channel
  torch_step = reference.bn1.running_var.numpy() - 0.9 * before
  np.testing.assert_allclose(stats["var"], 0.9 * before + torch_step * (n - 1) / n, rtol=1e-4)


def test_files_tool_and_loading_into_a_system(tmp_path, capsys):
  reference = torch_reference.build("resnet18", seed=4)
  state = reference.state_dict()
  torch.save({"state_dict": state, "epoch": 3}, tmp_path / "r18.pth")  # a wrapped checkpoint
  safetensors.numpy.save_file(_state_dict(reference), str(tmp_path / "r18.safetensors"))
  for source in ("r18.pth", "r18.safetensors"):
    assert convert_weights.main(["--backbone", "resnet18", "--input", str(tmp_path / source),
                      "--output", str(tmp_path / f"{source}.flax.safetensors")]) == 0
  assert "params: 62 arrays, 11,689,512 values" in capsys.readouterr().out
  from_pth = weights.load_variables(tmp_path / "r18.pth.flax.safetensors")
  from_safetensors = weights.load_variables(tmp_path / "r18.safetensors.flax.safetensors")
  jax.tree.map(np.testing.assert_array_equal, from_pth, from_safetensors)

  # A system with a headless ResNet-18 under "backbone" and a head of its own.
  backbone = backbones.get("resnet18").build(num_classes=None)
  template = {"params": {"backbone": backbones.variables_template("resnet18", None)["params"],
                         "head": {"kernel": jax.ShapeDtypeStruct((512, 7), jnp.float32)}},
              "batch_stats": {"backbone": backbones.variables_template("resnet18", None)[
                  "batch_stats"]}}
  system = jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), template)
  loaded = weights.load_pretrained(system, tmp_path / "r18.pth.flax.safetensors",
                                   at="backbone", allow_unused=["fc"])
  np.testing.assert_array_equal(loaded["params"]["head"]["kernel"], 0.5)
  x, x_torch = _images(seed=5)
  got = backbone.apply({c: loaded[c]["backbone"] for c in loaded}, x, train=False)
  with torch.no_grad():
    want = reference(x_torch)["pooled"].numpy()
  assert _relative_error(got["pooled"], want) < TOLERANCE


@pytest.mark.parametrize("in_size, out_size", [((10, 13), (7, 7)), ((3, 5), (7, 4)),
                                               ((14, 14), (7, 7))])
def test_adaptive_avg_pool_matches_torch(in_size, out_size):
  x = np.random.default_rng(6).normal(size=(2, *in_size, 3)).astype(np.float32)
  want = torch.nn.AdaptiveAvgPool2d(out_size)(torch.from_numpy(x.transpose(0, 3, 1, 2)))
  got = layers.adaptive_avg_pool(jnp.asarray(x), out_size)
  np.testing.assert_allclose(got, torch_reference.nhwc(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["fcn_resnet50"])
def test_converted_fcn_segmenter_matches_torch(name, tmp_path):
  """torchvision's FCN layout: dilated layer3/layer4, FCN head, exact bilinear upsampling; the
  auxiliary head in the state dict is dropped."""
  reference = torch_reference.build(name)
  state = _state_dict(reference)
  assert any(k.startswith("aux_classifier.") for k in state)
  source = tmp_path / "fcn.safetensors"
  safetensors.numpy.save_file(state, str(source))
  converted = tmp_path / "fcn_flax.safetensors"
  assert convert_weights.main(["--backbone", name, "--input", str(source),
                               "--output", str(converted)]) == 0
  variables = weights.load_variables(converted)
  x, x_torch = _images(size=48)
  with torch.no_grad():
    want = {k: torch_reference.nhwc(v) for k, v in reference(x_torch).items()}
  got = jax.jit(lambda v, x: backbones.get(name).build(num_classes=21).apply(v, x))(variables, x)
  assert got["stage4"].shape == (1, 6, 6, 2048)  # output stride 8
  for tap in ("stage4", "logits"):
    assert _relative_error(got[tap], want[tap]) < TOLERANCE, tap
  np.testing.assert_array_equal(np.argmax(got["logits"], -1), np.argmax(want["logits"], -1))


def test_bilinear_resize_is_torch_interpolate():
  x = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype(np.float32)
  for size in ((13, 11), (5, 7), (3, 4)):
    want = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), size=size,
                                           mode="bilinear", align_corners=False)
    np.testing.assert_allclose(layers.bilinear_resize(jnp.asarray(x), size),
                               torch_reference.nhwc(want), atol=1e-5)


def test_segment_tool_writes_one_mask_per_image_and_resumes(tmp_path):
  """tools/segment.py with converted (random) FCN weights: masks the size of each image, values
  0/255, equal to the person class of the network's own output; existing masks are kept."""
  import cv2

  from fashion_jax.tools import segment

  reference = torch_reference.build("fcn_resnet50")
  weights_file = tmp_path / "fcn.safetensors"
  weights.save_variables(weights_file, backbones.convert_state_dict("fcn_resnet50",
                                                                    _state_dict(reference)))
  rng = np.random.default_rng(0)
  for name, (h, w) in (("a.jpg", (40, 56)), ("b/c.jpg", (64, 48))):
    (tmp_path / "root" / name).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(tmp_path / "root" / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
  argv = [f"--root={tmp_path / 'root'}", "--images=**/*.jpg", f"--weights={weights_file}",
          f"--out={tmp_path / 'masks'}", "--size=32"]
  assert segment.main([*argv[:1], "--images=*.jpg", *argv[2:]]) == 0
  assert segment.main([*argv[:1], "--images=b/*.jpg", *argv[2:]]) == 0
  for name, (h, w) in (("a.png", (40, 56)), ("b/c.png", (64, 48))):
    mask = cv2.imread(str(tmp_path / "masks" / name), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}
  image = cv2.cvtColor(cv2.imread(str(tmp_path / "root" / "a.jpg")), cv2.COLOR_BGR2RGB)
  model = backbones.get("fcn_resnet50").build(num_classes=21)
  want = segment.person_mask_of(model, weights.load_variables(weights_file), image, 32)
  np.testing.assert_array_equal(cv2.imread(str(tmp_path / "masks" / "a.png"), 0), want)
  stamp = (tmp_path / "masks" / "a.png").stat().st_mtime_ns
  assert segment.main([*argv[:1], "--images=*.jpg", *argv[2:]]) == 0  # resumes: kept
  assert (tmp_path / "masks" / "a.png").stat().st_mtime_ns == stamp
  assert segment.network_size(40, 56, 32) == (64, 32)  # long side to a multiple of 64
