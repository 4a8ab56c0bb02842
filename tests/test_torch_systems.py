"""tools/torch/systems.py: the PyTorch timing counterparts are the JAX systems' networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch comes with requirements-test.txt")

from configs import fpm, landmark_attention, mtct, sister, two_stream  # noqa: E402
from fashion_jax import losses, systems  # noqa: E402
from fashion_jax.data import schema  # noqa: E402
from fashion_jax.ops import boundary  # noqa: E402
from fashion_jax.systems import mtct as mtct_model  # noqa: E402
from fashion_jax.systems import two_stream as two_stream_model  # noqa: E402
from fashion_jax.tools import benchmarking  # noqa: E402
from tools.torch import steps as torch_steps  # noqa: E402
from tools.torch import systems as torch_systems  # noqa: E402

DEEPFASHION = benchmarking.DEEPFASHION_HEAD_SIZES
NUM_SISTER_OUTPUTS = len(schema.DCSA_BINARY_LABELS) + sum(
    len(v) for v in schema.DCSA_MULTICLASS_LABELS.values())  # 23 binary; 7, 3, 3 classes


def jax_parameter_count(config, spec) -> int:
  system = systems.get_system(config.system)
  module = system.make_module(config.model, spec)
  batch = benchmarking.fake_batch(config.data, system, spec, 1)
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), batch, train=False))
  return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(shapes["params"])))


def torch_parameter_count(net) -> int:
  return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name", ["fpm", "landmark_attention", "two_stream", "sister", "mtct"])
def test_paper_config_counterparts_have_the_same_parameters(name):
  # Same layers, widths and heads on both sides: the trainable parameter counts agree exactly
  # (batch-norm running statistics are buffers in torch and batch_stats in flax, not counted).
  config = {"fpm": fpm, "landmark_attention": landmark_attention, "two_stream": two_stream,
            "sister": sister, "mtct": mtct}[name].get_config()
  if name in ("landmark_attention", "two_stream"):
    spec = benchmarking.benchmark_spec(config, *DEEPFASHION)
    network = (torch_systems.LandmarkAttention if name == "landmark_attention"
               else torch_systems.TwoStream)
    net = network(config.model, *DEEPFASHION)
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
  for variant in ("runlocal", "no_boundary", "gt_boundary", "no_structure"):
    with pytest.raises(ValueError, match="paper config's only"):
      torch_systems.TwoStream(two_stream.get_config(variant).model, *DEEPFASHION)
  frozen = two_stream.get_config().model
  frozen.structure_gradient = False  # a cheaper backward pass: must not be timed as the paper's
  with pytest.raises(ValueError, match="paper config's only"):
    torch_systems.TwoStream(frozen, *DEEPFASHION)


def test_hull_fill_of_a_rectangle_is_the_exact_rasteriser_s():
  # Axis-aligned rectangle with an interior point, a duplicate corner and an invalid far point:
  # the half-plane fill and the exact Bresenham scan-line fill are the same pixels.
  points = np.array([[[3, 4], [12, 4], [12, 9], [3, 9], [7, 6], [12, 9], [40, -30]]], np.float32)
  valid = np.array([[True] * 6 + [False]])
  got = torch_systems.hull_fill(torch.from_numpy(points), torch.from_numpy(valid), 16, 2)
  want = boundary.scanline_fill(points, valid, 16, 16, margin=2)
  np.testing.assert_array_equal(got.numpy(), np.asarray(want, np.float32))
  assert got.sum() == 10 * 6


def test_hull_fill_of_a_convex_polygon_is_inside_the_exact_fill():
  # Slanted edges: Bresenham's boundary pixels stick out of the true hull by under a pixel, so
  # the half-plane fill (the pixel centres inside the hull) is a subset of the exact fill and
  # differs from it only along the outline.
  rng = np.random.default_rng(0)
  for _ in range(5):
    points = rng.uniform(4, 60, (1, 8, 2)).round().astype(np.float32)
    valid = np.ones((1, 8), bool)
    got = torch_systems.hull_fill(torch.from_numpy(points), torch.from_numpy(valid), 64, 0)
    want = np.asarray(boundary.scanline_fill(points, valid, 64, 64), np.float32)
    assert np.all(got.numpy() <= want)
    outline = np.asarray(boundary.boundary_raster(points, valid, 64, 64), np.float32)
    assert np.all(want - got.numpy() <= outline)  # only outline pixels are missing


def test_two_stream_boundary_map_matches_the_jax_one():
  # Peaks on a rectangle's corners and sides in the last stack's 64x64 maps: the PyTorch
  # boundary map at 56x56 (decode, hull, fill, blur) equals the JAX step's, and a row with too few
  # confident peaks gets the all-ones map on both sides. (Single-pixel peaks and an axis-aligned
  # hull: the cases where the two agree exactly; the PyTorch side has no quarter-pixel shift and
  # fills slanted edges by a half-plane test, see the tests above.)
  config = two_stream.get_config()
  net = torch_systems.TwoStream(config.model, *DEEPFASHION)
  maps = np.zeros((2, 8, 64, 64), np.float32)
  for i, (x, y) in enumerate([(10, 12), (50, 12), (50, 40), (10, 40), (30, 12), (50, 30),
                              (30, 40), (10, 30)]):
    maps[0, i, y, x] = 1.0
  maps[1, :2, 20, 20] = 1.0  # two confident peaks: fewer than boundary_min_points
  got = net.boundary(torch.from_numpy(maps), 56)[:, 0].numpy()
  m = config.model
  points, valid = two_stream_model.boundary_landmarks(
      "predicted", jnp.asarray(maps.transpose(0, 2, 3, 1)), {}, min_score=m.boundary_min_score,
      min_points=m.boundary_min_points)
  want = two_stream_model.boundary_map(points, valid, (56, 56), m.boundary_sigma)
  np.testing.assert_allclose(got, np.asarray(want), atol=1e-6)
  assert got[0].min() == 0 and got[0].max() == pytest.approx(1) and np.all(got[1] == 1)


@pytest.mark.parametrize("stacks", [0, 3])
def test_torch_landmark_loss_is_the_jax_one(stacks):
  # The per-element MSE of each output's maps, summed over stacks (not averaged over them), as
  # deepfashion.landmark_heatmap_loss with every landmark visible: one map set (LDA) and three
  # stacks.
  from fashion_jax.systems import deepfashion

  rng = np.random.default_rng(0)
  lead = (stacks,) if stacks else ()
  maps = rng.random((*lead, 2, 16, 16, 8)).astype(np.float32)  # [(S,) B, h, w, L]
  batch = {"image": np.zeros((2, 64, 64, 3), np.uint8),
           "landmarks": rng.uniform(0, 64, (2, 8, 2)).astype(np.float32),
           "landmarks_visibility": np.full((2, 8), schema.VISIBLE, np.int8),
           "valid": np.ones(2, bool)}
  loss_cfg = two_stream.get_config().loss
  want = deepfashion.landmark_heatmap_loss({"landmark_heatmaps": jnp.asarray(maps)}, batch,
                                        loss_cfg)
  targets = losses.heatmap_targets(points=batch["landmarks"], mask=np.ones((2, 8), bool),
                                   map_hw=(16, 16), stride=4.0,
                                   sigma_input_px=loss_cfg.heatmap_sigma_input_px)
  to_torch = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(a), -1, -3)))
  got = torch_steps.landmark_loss(to_torch(maps),
                                  to_torch(np.broadcast_to(targets, maps.shape)))
  np.testing.assert_allclose(float(got), float(want), rtol=1e-5)


@pytest.mark.parametrize("name", ["landmark_attention", "two_stream"])
def test_torch_attribute_loss_is_the_jax_one(name):
  # Each config's class weights and normalisation: (0.1, 1) over the weight sum for LDA, W = 332
  # over the label count for the two-stream network.

  loss_cfg = {"landmark_attention": landmark_attention, "two_stream": two_stream}[
      name].get_config().loss
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (4, 20)).astype(np.float32)
  labels = (rng.random((4, 20)) < 0.2).astype(np.float32)
  negative, positive = loss_cfg.attribute_class_weights
  want = losses.sigmoid_cross_entropy(
      logits=logits, labels=labels, label_mask=np.ones_like(labels, bool),
      positive_weight=positive, negative_weight=negative, normalize=loss_cfg.attribute_normalize)
  got = torch_steps.attribute_loss(torch.from_numpy(logits), torch.from_numpy(labels), loss_cfg)
  np.testing.assert_allclose(float(got), float(want), rtol=1e-5)


def _toy(name):
  c = {"sister": sister, "mtct": mtct, "two_stream": two_stream}[name].get_config()
  if name == "two_stream":  # a small hourglass, ResNet-50 at 64x64, every peak confident
    c.model.update(dict(stacks=2, hourglass_features=32, classification_size=64,
                        boundary_min_score=-1.0))
  return c, (64 if name == "two_stream" else 32)


@pytest.mark.parametrize("name", ["two_stream", "sister", "mtct"])
def test_torch_step_runs_and_learns(name):
  # compare_torch's PyTorch side of a system at toy size: its loss falls over steps.
  config, side = _toy(name)
  step = torch_steps.torch_step(name, config, 4, side)
  losses = [step() for _ in range(5)]
  assert all(np.isfinite(losses))
  assert losses[-1] < losses[0]
