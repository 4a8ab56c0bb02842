"""Two-stream multi-task network: the paper's shapes, one-way sharing, the boundary map inside
the compiled step, loss masking over stacks, phases with a model switch, exact resume."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_SYNTH

from configs import two_stream as tsmt_config
from fashion_jax import optim, state, steps, train
from fashion_jax import phases as phases_lib
from fashion_jax import run as run_lib
from fashion_jax.data import schema
from fashion_jax.systems import deepfashion, two_stream

SPEC = schema.DatasetSpec(category_names=tuple(f"c{i}" for i in range(50)),
                          attribute_names=tuple(f"a{i}" for i in range(1000)),
                          attribute_groups=tuple(i % 5 for i in range(1000)),
                          attribute_group_names=("texture", "fabric", "shape", "part", "style"))


def _tiny_model(model_cfg):
  model_cfg.update(dict(stacks=2, hourglass_depth=1, hourglass_features=8,
                        resnet_stage_sizes=(1, 1, 1, 1), resnet_width=4, classification_size=28,
                        boundary_sigma=1.0))
  return model_cfg


def _batch(size=32, n=2, seed=0):
  rng = np.random.default_rng(seed)
  return {"image": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
          "landmarks": rng.uniform(4, size - 4, (n, 8, 2)).astype(np.float32),
          "landmarks_visibility": np.array([[1, 1, 0, 2, -1, 1, 1, 1]] * n, np.int8),
          "category": np.arange(n, dtype=np.int32), "attributes":
          rng.integers(-1, 2, (n, 1000)).astype(np.int8), "valid": np.ones(n, bool)}


def test_paper_sizes():
  model = two_stream.make_module(tsmt_config.get_config().model, SPEC)
  batch = {"image": jnp.zeros((1, 256, 256, 3), jnp.uint8)}
  out, variables = jax.eval_shape(lambda: model.init_with_output(
      jax.random.PRNGKey(0), batch, train=False, capture_intermediates=True,
      mutable=["params", "batch_stats", "intermediates"]))
  assert out["landmark_heatmaps"].shape == (4, 1, 64, 64, 8)  # 4 stacks, all supervised
  assert out["boundary_attention"].shape == (1, 56, 56)  # at ResNet stage1 of a 224 input
  assert out["category_logits"].shape == (1, 50) and out["attribute_logits"].shape == (1, 1000)
  params = variables["params"]
  assert set(params) == {"landmark_stream", "classification_stream", "structure_restore",
                         "structure_restore_bn", "category_head", "attribute_head"}
  assert params["structure_restore"]["kernel"].shape == (1, 1, 512 + 256, 512)
  resnet = params["classification_stream"]
  assert len([k for k in resnet if k.startswith("layer3_")]) == 6  # ResNet-50: 3, 4, 6, 3
  assert "fc" not in resnet  # the ImageNet classifier is replaced by the two heads
  assert len([k for k in params["landmark_stream"] if k.startswith("hourglass")]) == 4


def test_the_parameter_free_structure_awareness_adds_the_repeated_landmark_features():
  config = tsmt_config.get_config("parameter_free")
  assert config.model.structure_fusion == "add"
  model = two_stream.make_module(config.model, SPEC)
  batch = {"image": jnp.zeros((1, 256, 256, 3), jnp.uint8)}
  _, variables = jax.eval_shape(lambda: model.init_with_output(jax.random.PRNGKey(0), batch))
  # No parameters of its own: the 1x1 conv + BN of the default are gone, nothing replaces them.
  assert set(variables["params"]) == {"landmark_stream", "classification_stream",
                                      "category_head", "attribute_head"}
  # F' = F + [S; S] on hand-made features: 2 landmark channels into 4 ResNet channels.
  net = two_stream.TwoStreamNet(num_categories=2, num_attributes=2, structure_fusion="add")
  x = jnp.arange(2 * 2 * 4, dtype=jnp.float32).reshape(1, 2, 2, 4)
  shared = jnp.asarray([[[[10.0, 20.0]] * 2] * 2])  # [1, 2, 2, 2], already at x's size
  out = net.apply({}, x, shared, False, method=net._structure)
  np.testing.assert_allclose(out, x + jnp.asarray([10.0, 20.0, 10.0, 20.0]))


def test_the_ablation_variants_set_their_fields():
  assert tsmt_config.get_config("detached").model.structure_gradient is False
  assert tsmt_config.get_config("multiply").model.boundary_formula == "multiply"
  base = tsmt_config.get_config().model
  assert (base.structure_gradient, base.boundary_formula, base.structure_fusion) == (
      True, "residual", "conv")


def _tiny_variables(model, batch):
  return state.init_variables(model, deepfashion.BATCH_FIELDS, {k: v[0] for k, v in batch.items()},
                              seed=0)


def test_landmark_loss_has_no_gradient_in_the_classification_stream():
  cfg = _tiny_model(tsmt_config.get_config().model)
  model = two_stream.make_module(cfg, SPEC)
  batch = _batch()
  variables = _tiny_variables(model, batch)
  loss_cfg = tsmt_config.get_config().loss

  def landmark_loss(params):
    out, _ = model.apply({**variables, "params": params}, batch, train=True,
                         mutable=["batch_stats"])
    return deepfashion.landmark_heatmap_loss(out, batch, loss_cfg)

  category = lambda p: deepfashion.category_loss(model.apply(
      {**variables, "params": p}, batch, train=True, mutable=["batch_stats"])[0], batch, None)
  both = jax.jit(lambda p: (jax.grad(landmark_loss)(p), jax.grad(category)(p)))
  grads, category_grads = both(variables["params"])
  for name in ("classification_stream", "structure_restore", "structure_restore_bn",
               "category_head", "attribute_head"):
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads[name])), name
  assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads["landmark_stream"]))
  # The other way is open: the classification loss reaches the landmark stream through the
  # structure features (the paper lets them co-adapt); the boundary map carries no gradient.
  assert any(float(jnp.abs(g).max()) > 0
             for g in jax.tree.leaves(category_grads["landmark_stream"]))
  # ... unless the shared features carry no gradient: then only the landmark loss trains it.
  cfg.structure_gradient = False
  detached = two_stream.make_module(cfg, SPEC)
  detached_category = lambda p: deepfashion.category_loss(detached.apply(
      {**variables, "params": p}, batch, train=True, mutable=["batch_stats"])[0], batch, None)
  grads = jax.jit(jax.grad(detached_category))(variables["params"])
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads["landmark_stream"]))
  assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads["structure_restore"]))


def _primitives(jaxpr):
  """Every primitive of a jaxpr, nested jaxprs (jit, scan, cond, custom_vjp) included."""
  for eqn in jaxpr.eqns:
    yield str(eqn.primitive)
    for value in eqn.params.values():
      for sub in value if isinstance(value, list | tuple) else [value]:
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          yield from _primitives(inner)


def test_the_compiled_train_step_holds_the_rasterizer_with_no_host_round_trip():
  config = tsmt_config.get_config()
  _tiny_model(config.model)
  batch = _batch()
  primitives, equations = {}, {}
  for source in ("predicted", "none"):
    config.model.boundary_source = source
    model = two_stream.make_module(config.model, SPEC)
    variables = _tiny_variables(model, batch)
    phase = phases_lib.resolve_phases(config, steps_per_epoch=10)[-1]
    train_state = state.create_state(variables, optim.make_optimizer(phase, variables["params"]),
                                     seed=0)
    step = steps.compile_train_step(model, two_stream.SYSTEM, phase.loss)
    jaxpr = jax.make_jaxpr(step)(train_state, batch)
    names = set(_primitives(jaxpr.jaxpr))
    primitives[source], equations[source] = names, len(str(jaxpr))
    assert not {n for n in names if "callback" in n or "infeed" in n or "outfeed" in n}, names
    hlo = step.lower(train_state, batch).as_text()
    for marker in ("callback", "outfeed", "send(", "recv(", "host"):
      assert marker not in hlo.lower(), marker
  assert equations["predicted"] > equations["none"]  # the rasterizer is in the step


def test_the_step_runs_with_every_host_transfer_disallowed():
  """State and batch on the device, the boundary map made from the step's own predictions: the
  call moves nothing between host and device (on a GPU, the device check runs this)."""
  config = tsmt_config.get_config()
  _tiny_model(config.model)
  batch = _batch()
  model = two_stream.make_module(config.model, SPEC)
  variables = _tiny_variables(model, batch)
  phase = phases_lib.resolve_phases(config, steps_per_epoch=10)[-1]
  train_state = state.create_state(variables, optim.make_optimizer(phase, variables["params"]),
                                   seed=0)
  train_state, batch = jax.device_put((train_state, batch))
  step = steps.compile_train_step(model, two_stream.SYSTEM, phase.loss).lower(
      train_state, batch).compile()
  with jax.transfer_guard("disallow"):
    train_state, metrics = step(train_state, batch)
    jax.block_until_ready(metrics)
  assert np.isfinite(float(metrics["loss"]))
  with pytest.raises(Exception, match="[Dd]isallowed"):  # the guard is live: numpy input refused
    with jax.transfer_guard("disallow"):
      step(train_state, jax.tree.map(np.asarray, batch))


def test_masked_landmarks_get_no_gradient_in_any_stack():
  rng = np.random.default_rng(0)
  batch = _batch(size=16)
  outputs = {"landmark_heatmaps": jnp.asarray(rng.normal(size=(3, 2, 4, 4, 8)), jnp.float32),
             "category_logits": jnp.zeros((2, 50)), "attribute_logits": jnp.zeros((2, 1000))}
  cfg = tsmt_config.get_config().loss
  grads = jax.grad(lambda o: deepfashion.loss(o, batch, cfg)[0])(outputs)["landmark_heatmaps"]
  per_map = np.abs(np.asarray(grads)).sum(axis=(2, 3))  # [S, B, 8]
  assert np.all(per_map[..., 2:5] == 0) and np.all(per_map[..., [0, 1, 5, 6, 7]] > 0)


@pytest.fixture
def tiny_tsmt_config(synth_data_dir):
  c = tsmt_config.get_config("runlocal")
  c.data.name, c.data.data_dir = "fashion_synth", synth_data_dir
  c.data.synth.update(TINY_SYNTH)
  c.data.image_size, c.data.num_threads = (32, 32), 1
  _tiny_model(c.model)
  c.batch_size, c.num_devices, c.log_every_steps, c.progress = 8, 1, 1, False
  c.eval_every_epochs, c.eval.baselines = 100.0, ("untrained", "training_mean")
  c.phases = [dict(name="landmark_stream", num_steps=2, trainable="landmark_stream/.*",
                   model=dict(boundary_source="ground_truth"),
                   loss=dict(weights=dict(landmarks=100.0, category=0.0, attributes=0.0))),
              dict(name="joint", num_steps=3)]
  return c


def test_phases_switch_the_boundary_source_and_resume_exactly(tiny_tsmt_config, tmp_path):
  c = tiny_tsmt_config
  straight = str(tmp_path / "straight")
  results = train.train_and_evaluate(c, straight)
  assert list(results)[1:] == ["untrained", "training mean"]  # [0]: the best checkpoint
  interrupted = str(tmp_path / "interrupted")
  c.phases[1]["num_steps"] = 1  # stops after step 3, in the joint phase, then resumes
  c.eval.baselines = ()
  train.train_and_evaluate(c, interrupted)
  c.phases[1]["num_steps"] = 3
  train.train_and_evaluate(c, interrupted)
  finals = []
  for workdir in (straight, interrupted):
    run = run_lib.Run(c, workdir)
    try:
      assert run.module_for(0).boundary_source == "ground_truth"
      assert run.module_for(1).boundary_source == "predicted"
      final, _ = run.restore_or_init()
      finals.append(final)
    finally:
      run.close()
  assert int(finals[0].step) == int(finals[1].step) == 5
  for a, b in zip(jax.tree.leaves(finals[0].params), jax.tree.leaves(finals[1].params),
                  strict=True):
    np.testing.assert_array_equal(a, b)
  assert (tmp_path / "straight" / "predictions_test.png").exists()
