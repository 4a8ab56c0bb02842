"""Backbone structure: torchvision parameter counts, named taps, partial runs, dtype, BN updates.

Shapes and counts use `jax.eval_shape`, so nothing of ImageNet size is ever computed here.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fashion_jax.models import hourglass, layers, nin, resnet, vgg


def _init_shapes(model, size, dtype=jnp.float32):
  """(output shapes, variable shapes) of model on a [1, size, size, 3] input, not computed."""
  x = jax.ShapeDtypeStruct((1, size, size, 3), dtype)
  return jax.eval_shape(
      lambda x: model.init_with_output(jax.random.key(0), x, train=False), x)


def _count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


# torchvision's numbers with a 1000-class head (sum(p.numel() for p in model.parameters())).
@pytest.mark.parametrize("model, expected", [
    (resnet.ResNet18(), 11_689_512),
    (resnet.ResNet34(), 21_797_672),
    (resnet.ResNet50(), 25_557_032),
    (resnet.ResNet101(), 44_549_160),
    (resnet.ResNet152(), 60_192_808),
    (vgg.VGG16(), 138_357_544),
    (vgg.VGG16BN(), 138_365_992),
])
def test_parameter_counts_equal_torchvision(model, expected):
  _, variables = _init_shapes(model, 32)
  assert _count(variables["params"]) == expected


def test_resnet50_taps_at_224():
  taps, _ = _init_shapes(resnet.ResNet50(), 224)
  assert {k: v.shape for k, v in taps.items()} == {
      "stem": (1, 56, 56, 64), "stage1": (1, 56, 56, 256), "stage2": (1, 28, 28, 512),
      "stage3": (1, 14, 14, 1024), "stage4": (1, 7, 7, 2048), "pooled": (1, 2048),
      "logits": (1, 1000)}
  headless, variables = _init_shapes(resnet.ResNet50(num_classes=None), 224)
  assert "logits" not in headless and "fc" not in variables["params"]


def test_vgg16_taps_at_224_include_conv4_3():
  taps, _ = _init_shapes(vgg.VGG16(), 224)
  assert taps["conv4_3"].shape == (1, 28, 28, 512)  # the landmark-attention network's tap
  assert taps["pool5"].shape == taps["avgpool"].shape == (1, 7, 7, 512)
  assert taps["fc7"].shape == (1, 4096) and taps["logits"].shape == (1, 1000)
  assert set(taps) == set(vgg.VGG16().stage_names())  # eval_shape sorts the keys


def test_nin_trunk_follows_the_mtn_table():
  # The poster's table, (kernel, channels, stride) per conv, typed in here independently.
  table = [(7, 96, 2), (1, 96, 1), (1, 96, 1), (5, 256, 2), (1, 256, 1), (1, 256, 1),
           (3, 512, 1), (1, 512, 1), (1, 512, 1), (3, 1024, 1), (1, 1024, 1), (1, 512, 1),
           (1, 384, 1), (3, 512, 2), (1, 512, 1), (1, 512, 1)]
  expected, channels = 0, 3
  for kernel, out, _ in table:
    expected += kernel * kernel * channels * out + out
    channels = out
  taps, variables = _init_shapes(nin.NIN(), 224)
  assert _count(variables["params"]) == expected
  # Strides 2 (conv1), 2 (pool1), 2 (conv2), 2 (conv5), 2 (pool5): 224 -> 7.
  assert {k: v.shape for k, v in taps.items()} == {
      "nin1": (1, 112, 112, 96), "pool1": (1, 56, 56, 96), "nin2": (1, 28, 28, 256),
      "nin3": (1, 28, 28, 512), "nin4": (1, 28, 28, 384), "nin5": (1, 14, 14, 512),
      "pool5": (1, 7, 7, 512)}


def _residual_params(cin, cout):
  """Newell's bottleneck: BN-1x1(c/2)-BN-3x3(c/2)-BN-1x1(c), biased convs, 1x1 skip if needed."""
  mid = cout // 2
  count = 2 * cin + (cin * mid + mid) + 2 * mid + (9 * mid * mid + mid) + 2 * mid
  count += mid * cout + cout
  return count + (cin * cout + cout if cin != cout else 0)


def test_stacked_hourglass_shapes_and_parameter_count():
  feats, heat, depth, stacks = 16, 5, 2, 3
  model = hourglass.StackedHourglass(num_heatmaps=heat, num_stacks=stacks, depth=depth,
                                     features=feats)
  taps, variables = _init_shapes(model, 64)
  assert taps["heatmaps"].shape == (stacks, 1, 16, 16, heat)  # one per stack, stride 4
  assert taps["stem"].shape == taps["stack3"].shape == (1, 16, 16, feats)
  stem = 49 * 3 * 64 + 64 + 2 * 64 + _residual_params(64, 128) + _residual_params(128, 128)
  stem += _residual_params(128, feats)
  per_stack = (3 * depth + 1) * _residual_params(feats, feats)  # up/down/low per level + bottom
  per_stack += _residual_params(feats, feats) + feats * feats + feats + 2 * feats
  per_stack += feats * heat + heat
  merge = (feats * feats + feats) + (heat * feats + feats)
  assert _count(variables["params"]) == stem + stacks * per_stack + (stacks - 1) * merge


def test_hourglass_rejects_maps_it_cannot_halve():
  model = hourglass.StackedHourglass(num_heatmaps=2, num_stacks=1, depth=4, features=8)
  with pytest.raises(ValueError, match="divide by 16"):
    _init_shapes(model, 40)  # 10x10 after the stem


def test_compute_dtype_is_honoured_and_params_stay_float32():
  for model in (resnet.ResNet18(dtype=jnp.bfloat16), vgg.VGG16BN(dtype=jnp.bfloat16),
                nin.NIN(batch_norm=True, dtype=jnp.bfloat16),
                hourglass.StackedHourglass(2, num_stacks=2, depth=1, features=8,
                                           dtype=jnp.bfloat16)):
    taps, variables = _init_shapes(model, 32)
    assert {leaf.dtype for leaf in jax.tree.leaves(taps)} == {jnp.dtype(jnp.bfloat16)}
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


def _random_variables(model, x, seed=0):
  """Variables of `model` filled with numpy draws: `model.init` compiles for seconds on CPU."""
  rng = np.random.default_rng(seed)
  _, template = jax.eval_shape(
      lambda x: model.init_with_output(jax.random.key(0), x, train=False), x)

  def fill(path, spec):
    leaf = path[-1].key
    if leaf == "var":
      return jnp.asarray(rng.uniform(0.5, 1.5, spec.shape), spec.dtype)
    scale = 1 / np.sqrt(np.prod(spec.shape[:-1])) if leaf == "kernel" else 0.1
    return jnp.asarray(rng.normal(1.0 if leaf == "scale" else 0.0, scale, spec.shape), spec.dtype)
  return jax.tree_util.tree_map_with_path(fill, template)


@pytest.fixture(scope="module")
def resnet18_variables():
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  return _random_variables(resnet.ResNet18(num_classes=10, width=8), x), x


def test_split_run_equals_full_run(resnet18_variables):
  variables, x = resnet18_variables
  apply = functools.partial(resnet.ResNet18(num_classes=10, width=8).apply, variables, train=False)
  full = apply(x)
  head = apply(x, stop_at="stage2")
  assert list(head) == ["stem", "stage1", "stage2"]
  tail = apply(head["stage2"], start_after="stage2")
  assert list(tail) == ["stage3", "stage4", "pooled", "logits"]
  np.testing.assert_allclose(tail["logits"], full["logits"], rtol=1e-6, atol=1e-6)
  # Modifying the middle changes the rest: the tail really runs on what it is given.
  doubled = apply(2 * head["stage2"], start_after="stage2")
  assert not np.allclose(doubled["logits"], full["logits"])


def test_bad_stage_names_are_reported(resnet18_variables):
  variables, x = resnet18_variables
  model = resnet.ResNet18(num_classes=10, width=8)
  with pytest.raises(ValueError, match="unknown stop_at='conv4_3'.*'stage3'"):
    model.apply(variables, x, train=False, stop_at="conv4_3")
  with pytest.raises(ValueError, match="nothing to run"):
    model.apply(variables, x, train=False, start_after="stage3", stop_at="stage2")


def test_training_updates_batch_stats_like_torch(resnet18_variables):
  variables, x = resnet18_variables
  _, updates = resnet.ResNet18(num_classes=10, width=8).apply(
      variables, x, train=True, mutable=["batch_stats"])
  # torch: running_mean <- 0.9 running_mean + 0.1 batch_mean.
  conv1 = jax.lax.conv_general_dilated(
      x, variables["params"]["conv1"]["kernel"], (2, 2), ((3, 3), (3, 3)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(updates["batch_stats"]["bn1"]["mean"],
                             0.9 * variables["batch_stats"]["bn1"]["mean"]
                             + 0.1 * conv1.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)


def test_adaptive_avg_pool_bins_match_torch_rule():
  # Length 5 -> 3: bins [0, 2), [1, 4), [3, 5) (they overlap); length 2 -> 3 repeats values.
  x = jnp.arange(5.0).reshape(1, 5, 1, 1) * jnp.ones((1, 1, 2, 1))
  pooled = layers.adaptive_avg_pool(x, (3, 2))
  np.testing.assert_allclose(pooled[0, :, 0, 0], [0.5, 2.0, 3.5])
  up = layers.adaptive_avg_pool(jnp.array([1.0, 3.0]).reshape(1, 1, 2, 1), (1, 3))
  np.testing.assert_allclose(up[0, 0, :, 0], [1.0, 2.0, 3.0])


def test_flatten_channels_first_is_torch_order():
  x = jnp.arange(2 * 3 * 4).reshape(1, 2, 3, 4)  # [B, H, W, C]
  flat = layers.flatten_channels_first(x)
  # torch flattens NCHW: index c*H*W + h*W + w holds x[0, h, w, c].
  assert int(flat[0, 1 * 6 + 1 * 3 + 2]) == int(x[0, 1, 2, 1])
