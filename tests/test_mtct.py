"""Multi-task curriculum transfer: synthetic X-Domain labels against the render, t-STE by hand
and at its limits, the poster's metrics by hand, the MTN's sizes, the curriculum's copy and
freezing, and the comparisons as configs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_SYNTH

from configs import mtct as mtct_config
from fashion_jax import evaluate, losses, metrics, state, train
from fashion_jax import run as run_lib
from fashion_jax.data import schema, synth
from fashion_jax.data.synth import xdomain
from fashion_jax.models import weights
from fashion_jax.systems import mtct


def test_tste_by_hand_and_at_its_limits():
  a, p, n = jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 2.0]])
  mask = jnp.array([True])
  # alpha 1: K(d2) = (1 + d2)^-1; K(a, p) = 1/2, K(a, n) = 1/5: -log((1/2) / (1/2 + 1/5)).
  value = losses.tste_loss(anchor=a, positive=p, negative=n, example_mask=mask, alpha=1.0)
  assert float(value) == pytest.approx(-np.log(0.5 / 0.7), rel=1e-6)
  # alpha 2: K = (1 + d2 / 2)^(-3/2).
  k = lambda d2: (1 + d2 / 2) ** -1.5
  value = losses.tste_loss(anchor=a, positive=p, negative=n, example_mask=mask, alpha=2.0)
  assert float(value) == pytest.approx(-np.log(k(1) / (k(1) + k(4))), rel=1e-6)
  same = losses.tste_loss(anchor=a, positive=a, negative=a, example_mask=mask)
  assert float(same) == pytest.approx(np.log(2), rel=1e-6)  # no information: log 2
  far = losses.tste_loss(anchor=a, positive=a, negative=a + 1e4, example_mask=mask)
  assert 0 <= float(far) < 1e-7  # identical positive, far negative: no loss
  grad = jax.grad(lambda x: losses.tste_loss(anchor=x, positive=p, negative=n,
                                             example_mask=mask))(a)
  assert float(grad[0, 0]) < 0  # moving the anchor towards the positive lowers the loss
  # The poster's formula sums over triplets: three triplets (one masked out) sum to twice one.
  three = lambda x: jnp.concatenate([x, x, x])
  kwargs = dict(anchor=three(a), positive=three(p), negative=three(n),
                example_mask=jnp.array([True, False, True]))
  one = -np.log(0.5 / 0.7)
  assert float(losses.tste_loss(**kwargs, reduction="sum")) == pytest.approx(2 * one, rel=1e-6)
  assert float(losses.tste_loss(**kwargs, reduction="mean")) == pytest.approx(one, rel=1e-6)
  assert mtct_config.get_config().loss.triplet_reduction == "sum"
  margin = losses.margin_triplet_loss(anchor=a, positive=p, negative=n, example_mask=mask,
                                      margin=0.5)
  assert float(margin) == 0.0  # 0.5 + 1 - 4 < 0
  assert float(losses.margin_triplet_loss(anchor=a, positive=n, negative=p, example_mask=mask,
                                          margin=0.5)) == pytest.approx(3.5)


def test_poster_metrics_by_hand():
  # Two groups: g0 with 2 classes, g1 with 3. Three images; image 2 lacks g1.
  groups = np.array([0, 0, 1, 1, 1])
  attributes = np.array([[1, 0, 0, 1, 0],
                         [0, 1, 1, 0, 0],
                         [1, 0, -1, -1, -1]])
  scores = np.array([[0.9, 0.1, 0.2, 0.5, 0.3],
                     [0.6, 0.4, 0.7, 0.2, 0.1],
                     [0.3, 0.7, 0.3, 0.3, 0.4]])
  assert metrics.average_precision([0.9, 0.6, 0.3], [True, False, True]) == pytest.approx(
      (1 + 2 / 3) / 2)
  result = metrics.xdomain_attribute_metrics(scores=scores, attributes=attributes, groups=groups,
                                             group_names=("a", "b"))
  # g0: class 0 positives {0, 2}: scores .9 .6 .3 -> AP (1 + 2/3) / 2; class 1 positive {1}:
  # scores .1 .4 .7 -> rank 2 -> AP 1/2. g1 (images 0, 1): class 0 positive {1}: .2 .7 -> 1;
  # class 1 positive {0}: .5 .2 -> 1; class 2: no positive, left out.
  ap = {"a0": (1 + 2 / 3) / 2, "a1": 0.5, "b0": 1.0, "b1": 1.0}
  assert result["per_group"]["a"] == pytest.approx((ap["a0"] + ap["a1"]) / 2)
  assert result["per_group"]["b"] == pytest.approx(1.0)
  # The headline is the mean of the group columns, as the poster's Table 1 rows; the pooled
  # mean over classes weights g0 by its two classes.
  assert result["mAP_cls"] == pytest.approx(((ap["a0"] + ap["a1"]) / 2 + 1.0) / 2)
  assert result["mAP_cls_pooled"] == pytest.approx(np.mean(list(ap.values())))
  # Predictions at or above chance (1/2 in g0, 1/3 in g1): image 0 {a0, b1}: both right;
  # image 1 {a0, b0}: one right of two; image 2 {a1}: wrong (only g0 labelled).
  assert result["mP_ins"] == pytest.approx((1 + 0.5 + 0) / 3)
  assert result["mR_ins"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_mtn_has_the_posters_layers():
  model = mtct.make_module(mtct_config.get_config().model, synth.render.ATTRIBUTE_SETS[
      "xdomain"].spec)
  batch = {"image": jnp.zeros((1, 224, 224, 3), jnp.uint8)}
  out, variables = jax.eval_shape(lambda: model.init_with_output(
      jax.random.PRNGKey(0), batch, capture_intermediates=True,
      mutable=["params", "intermediates"]))
  pool5 = variables["intermediates"]["trunk"]["__call__"][0]["pool5"]
  assert pool5.shape == (1, 7, 7, 512)
  params = variables["params"]
  assert set(params) == {"trunk", "shop_branches", "street_branches"}
  sizes = [len(v) for v in xdomain.GROUPS.values()]
  assert [o.shape[-1] for o in out["group_logits"]] == sizes
  for g, size in enumerate(sizes):
    branch = params["street_branches"]
    assert branch[f"group{g}_fc1"]["kernel"].shape == (7 * 7 * 512, 1024)
    assert branch[f"group{g}_fc2"]["kernel"].shape == (1024, 1024)
    assert branch[f"group{g}_out"]["kernel"].shape == (1024, size)
  assert params["trunk"]["conv4"]["kernel"].shape == (3, 3, 512, 1024)  # Conv4 3x3-1024


def test_a_saved_nin_trunk_loads_through_the_config(tmp_path):
  config = mtct_config.get_config("runlocal")
  module = mtct.make_module(config.model, synth.render.ATTRIBUTE_SETS["xdomain"].spec)
  example = {"image": np.zeros((64, 64, 3), np.uint8)}
  donor, target = (state.init_variables(module, ("image",), example, seed) for seed in (1, 2))
  weights.save_variables(tmp_path / "nin.safetensors",
                         {c: donor[c]["trunk"] for c in ("params", "batch_stats")})
  config.model.pretrained.trunk = str(tmp_path / "nin.safetensors")
  loaded = state.load_pretrained(target, config.model)
  for collection in ("params", "batch_stats"):
    jax.tree.map(np.testing.assert_array_equal, loaded[collection]["trunk"],
                 donor[collection]["trunk"])
  jax.tree.map(np.testing.assert_array_equal, loaded["params"]["street_branches"],
               target["params"]["street_branches"])  # the branches keep their initialisation


def test_the_comparisons_are_configs():
  phases = lambda arg: [(p["name"], p.get("trainable", ".*"), p.get("copy"))
                        for p in mtct_config.get_config(arg).phases]
  assert phases(None) == [("shop", ".*", None), ("street", "street_branches/.*",
                                                 {"street_branches": "shop_branches"})]
  assert [p["name"] for p in mtct_config.get_config("no_adapt").phases] == ["shop"]
  assert mtct_config.get_config("no_adapt").model.branches == "shop"
  assert phases("united") == [("shop_and_street", ".*", None)]
  ftt = mtct_config.get_config("finetune").phases[1]
  assert ftt["loss"]["triplet_weight"] == 0 and ftt["data"] == {"domain": "street"}
  mtct_phase = mtct_config.get_config().phases[1]
  assert mtct_phase["data"]["tuples"] == "triplet" and mtct_phase["loss"]["triplet_weight"] == 1
  end = mtct_config.get_config("end_to_end").phases
  assert len(end) == 1 and end[0]["data"]["tuples"] == "triplet"
  assert mtct_config.get_config("margin").loss.triplet_loss == "margin"


@pytest.fixture
def tiny_mtct(synth_data_dir):
  c = mtct_config.get_config("runlocal")
  c.data.name, c.data.data_dir = "fashion_synth", synth_data_dir
  c.data.synth.update(dict(TINY_SYNTH, num_train=32, views_per_item=2, attributes="xdomain"))
  c.data.image_size, c.data.num_threads = (32, 32), 1
  c.model.update(dict(fc_width=8, width_scale=0.05))
  c.batch_size, c.num_devices, c.progress, c.log_every_steps = 4, 1, False, 1
  c.eval_every_epochs, c.eval.baselines = 100.0, ("training_mean",)
  c.phases[0]["num_epochs"], c.phases[1]["num_epochs"] = 0.5, 0.5  # 2 steps each
  return c


def test_curriculum_copies_the_shop_branches_then_trains_only_the_street_ones(tiny_mtct,
                                                                              tmp_path):
  workdir = str(tmp_path / "mtct")
  results = train.train_and_evaluate(tiny_mtct, workdir)
  assert "training mean" in results
  run = run_lib.Run(tiny_mtct, workdir)
  try:
    assert [p.num_steps for p in run.phases] == [2, 2]
    final, _ = run.restore_or_init()
    after_1 = run.checkpointer.restore(run.enter_phase(final, 0), step=2)
    entered = run.enter_phase(after_1, 1)  # what stage 2 started from
  finally:
    run.close()
  leaves = lambda tree: jax.tree.leaves(jax.tree.map(np.asarray, tree))
  same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b),
                                                               strict=True))
  # Stage 1's evaluation (step 2) scored the shop branches it trains, not the untrained street
  # ones, and could not be the best checkpoint: the street branches predict in the end.
  with open(f"{workdir}/metrics.jsonl") as f:
    evals = {r["step"]: r for r in map(__import__("json").loads, f) if r["split"] == "eval"}
  assert sorted(evals) == [2, 4]
  run = run_lib.Run(tiny_mtct, workdir)
  try:
    assert not run.scores_final_model(0) and run.scores_final_model(1)
    assert run.checkpointer.best_step() == 4
    variables = state.variables_of(after_1)
    as_shop = evaluate.evaluate_variables(run.eval_data, run.predict_step_for(0),
                                          variables)["attributes"]
    as_street = evaluate.evaluate_variables(run.eval_data, run.predict_step,
                                            variables)["attributes"]
  finally:
    run.close()
  assert evals[2]["attributes/mAP_cls"] == pytest.approx(as_shop["mAP_cls"])
  # The evaluator list: street images (the run's own table) and shop images, each a file.
  import json as json_lib

  with open(f"{workdir}/results_test.json") as f:
    street = json_lib.load(f)
  with open(f"{workdir}/results_test_shop.json") as f:
    shop = json_lib.load(f)
  assert "street only" in street["data"]["records"] and "shop only" in shop["data"]["records"]
  assert set(street["methods"]) == set(shop["methods"]) == set(results)
  model = next(iter(results))
  assert street["methods"][model]["attributes/mAP_cls"] == pytest.approx(
      results[model]["attributes"]["mAP_cls"])  # the run returns its own evaluation
  assert as_shop["mAP_cls"] != pytest.approx(as_street["mAP_cls"])
  assert same(entered.params["street_branches"], after_1.params["shop_branches"])
  assert same(final.params["shop_branches"], after_1.params["shop_branches"])  # f_s frozen
  assert same(final.params["trunk"], after_1.params["trunk"])
  assert same(final.batch_stats["trunk"], after_1.batch_stats["trunk"])
  assert not same(final.params["street_branches"], entered.params["street_branches"])
  with open(f"{workdir}/metrics.jsonl") as f:
    rows = [__import__("json").loads(line) for line in f]
  stage2 = [r for r in rows if r["split"] == "train" and r["step"] > 2]
  assert stage2 and all(r["loss/triplet"] > 0 for r in stage2)
  assert all("loss/triplet" not in r for r in rows if r["split"] == "train" and r["step"] <= 2)
  spec = schema.DatasetSpec(attribute_names=("a", "b", "c"), attribute_groups=(0, 1, 0),
                            attribute_group_names=("g", "h"))
  with pytest.raises(ValueError, match="adjacent and in group order"):
    mtct.check_groups(spec)


def test_average_precision_with_ties_equals_scikit_learn_whatever_the_order():
  from sklearn.metrics import average_precision_score

  rng = np.random.default_rng(0)
  for trial in range(50):
    n = int(rng.integers(2, 60))
    scores = rng.integers(0, 4, n) / 4.0  # few distinct values: many ties
    positive = rng.random(n) < 0.3
    if not positive.any():
      positive[rng.integers(n)] = True
    ours = metrics.average_precision(scores, positive)
    assert ours == pytest.approx(average_precision_score(positive, scores)), trial
    order = rng.permutation(n)
    assert metrics.average_precision(scores[order], positive[order]) == pytest.approx(ours)


def test_average_precision_of_a_constant_score_is_the_positive_rate():
  # The training-mean baseline scores every image alike: one threshold, precision = 2 / 10,
  # wherever the positives sit in the records.
  for positive in ([1, 1] + [0] * 8, [0] * 8 + [1, 1], [0, 1] * 2 + [0] * 6):
    assert metrics.average_precision(np.full(10, 0.3), np.array(positive, bool)) == (
        pytest.approx(0.2))
  # By hand with a tie: scores .9 (pos), .5 (pos), .5 (neg), .1 (pos). Thresholds: .9 ->
  # P 1, R 1/3; .5 -> P 2/3, R 2/3; .1 -> P 3/4, R 1. AP = (1 + 2/3 + 3/4) / 3.
  assert metrics.average_precision([0.9, 0.5, 0.5, 0.1], [True, False, True, True]) == (
      pytest.approx((1 + 2 / 3 + 3 / 4) / 3))


def test_street_label_fraction_unlabels_the_street_views_of_the_other_items(tiny_mtct):
  from fashion_jax.data import catalog, pipeline, splits

  source = catalog.Catalog(progress=False).open(tiny_mtct.data).sources["train"]
  examples = [source[i] for i in range(len(source))]
  street = schema.DOMAINS.index("street")
  tiny_mtct.data.street_label_fraction = 0.5
  fn = pipeline.make_example_fn(tiny_mtct.data, train=True)
  kept = set()
  for example in examples:
    out = fn(example, np.random.default_rng(0))
    item = int(example["item_id"])
    labelled = splits.unit_hash([f"street-label:item:{item}"], seed=0)[0] < 0.5
    if int(example["domain"]) == street and not labelled:
      assert (out["attributes"] == -1).all() and out["category"] == -1
    else:
      np.testing.assert_array_equal(out["attributes"], example["attributes"])
      if int(example["domain"]) == street:
        kept.add(item)
  streets = {int(e["item_id"]) for e in examples if int(e["domain"]) == street}
  assert 0 < len(kept) < len(streets)  # some street items keep their labels, some lose them
  # Evaluation never loses labels, and the default fraction 1.0 keeps every label.
  evaluation = pipeline.make_example_fn(tiny_mtct.data, train=False)
  tiny_mtct.data.street_label_fraction = 1.0
  default = pipeline.make_example_fn(tiny_mtct.data, train=True)
  for example in examples:
    for fn in (evaluation, default):
      np.testing.assert_array_equal(fn(example, np.random.default_rng(0))["attributes"],
                                    example["attributes"])
