"""The pieces that let one trainer host every system: variant parsing, hold-outs, phases that
change data and model behaviour (and refuse what they cannot honour), frozen batch-norm
statistics, several pretrained loads, tuple batch sources, the model registry."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_SYNTH

from configs import fpm as fpm_config
from configs import landmark_attention as lda_config
from fashion_jax import config_base, optim, state, systems, train
from fashion_jax import phases as phases_lib
from fashion_jax import run as run_lib
from fashion_jax import workdir as workdir_files
from fashion_jax.data import batch_sources, datasets, schema, splits
from fashion_jax.models import weights

TWO_VIEWS = dict(TINY_SYNTH, num_train=32, views_per_item=2)  # view 0 shop, view 1 street


@pytest.fixture(scope="module")
def two_view_data(synth_data_dir):
  datasets.ensure_prepared(datasets.get_builder("fashion_synth", synth_data_dir,
                                                config=TWO_VIEWS))
  return synth_data_dir


@pytest.fixture
def two_view_config(two_view_data):
  c = lda_config.get_config("runlocal")
  c.data.name, c.data.data_dir = "fashion_synth", two_view_data
  c.data.synth.update(TWO_VIEWS)
  c.data.image_size, c.data.num_threads = (32, 32), 1
  c.model.update(dict(vgg_widths=(4, 8, 8, 8, 8), fc_width=16, landmark_widths=(8, 8, 8, 8),
                      squeeze_widths=(8, 8), expand_width=8))
  c.batch_size, c.num_devices, c.log_every_steps, c.progress = 4, 1, 1, False
  c.eval_every_epochs, c.eval.baselines, c.data.eval_max_examples = 100.0, (), 4
  return c


def test_variants_parse_flags_and_options_and_refuse_the_rest():
  parse = config_base.parse_variants
  assert parse("runlocal,ablation=no_attention", flags=("runlocal",),
               options={"ablation": ("no_attention", "none")}) == {
                   "runlocal": True, "ablation": "no_attention"}
  assert parse(None, flags=("runlocal",)) == {} == parse("", flags=())
  with pytest.raises(ValueError, match=r"unknown config variant\(s\) \['runlokal', "
                                       r"'ablation=x'\]; allowed .*runlocal, ablation=a\|b"):
    parse("runlokal,ablation=x", flags=("runlocal",), options={"ablation": ("a", "b")})
  with pytest.raises(ValueError, match="runlokal"):
    lda_config.get_config("runlokal")
  # Typed options: the value arrives as its type; one that does not convert is refused.
  typed = parse("stages=3,scale=0.5,name=x", options={"stages": int, "scale": float, "name": str})
  assert typed == {"stages": 3, "scale": 0.5, "name": "x"} and type(typed["stages"]) is int
  with pytest.raises(ValueError, match=r"\['stages=three'\]; allowed .*stages=<int>"):
    parse("stages=three", flags=("runlocal",), options={"stages": int})
  assert fpm_config.get_config("runlocal,stages=2").model.num_stages == 2
  assert fpm_config.get_config("stages=4").model.num_stages == 4


def test_hold_out_keeps_items_together_and_records_keep_their_side_as_data_grows():
  items = np.repeat(np.arange(200), 2)  # two views per item
  columns = {"item_id": items, "image_id": np.array([b"x"] * len(items))}
  keys, kind = splits.holdout_keys(columns)
  assert kind == "item id"
  u = splits.unit_hash(keys, seed=0)
  np.testing.assert_array_equal(u[0::2], u[1::2])  # both views of an item on one side
  assert 0.05 < np.mean(u < 0.1) < 0.15  # close to the fraction
  more = splits.unit_hash([*keys, "item:999", "item:1000"], seed=0)
  np.testing.assert_array_equal(more[:len(u)], u)  # new records move no old one
  assert not np.array_equal(splits.unit_hash(keys, seed=1), u)
  no_items = {"item_id": np.full(3, -1), "image_id": np.array([b"a.jpg", b"b.jpg", b"c.jpg"])}
  assert splits.holdout_keys(no_items) == (["image:a.jpg", "image:b.jpg", "image:c.jpg"],
                                           "image id")


def test_a_labelled_stored_split_is_used_and_a_missing_training_split_refused(two_view_config):
  data = two_view_config.data
  spec = schema.DatasetSpec(unlabelled=(("test", ("keypoints",)),))
  sizes = {"train": 10, "validation": 3, "test": 3}
  chosen = splits.resolve(data, spec, sizes, ("landmarks",), read_columns=None)
  assert [(s.split, s.indices) for s in chosen.values()] == [
      ("train", None), ("validation", None), ("test", None)]
  with pytest.raises(ValueError, match=r"cannot train: the dataset has no split 'train'"):
    splits.resolve(data, spec, {"test": 3}, ("landmarks",), read_columns=None)


def test_phase_overrides_that_cannot_be_honoured_are_refused(two_view_config, tmp_path):
  c = two_view_config
  for phases, message in [
      ([dict(name="a", num_steps=1, lr=0.1)], r"phase 'a': unknown keys \['lr'\]"),
      ([dict(name="a", num_steps=1, data=dict(domian="shop"))],
       r"phase 'a': data.domian is not a config field"),
      ([dict(name="a", num_steps=1, data=dict(augment=dict(flop=True)))],
       r"phase 'a': data.augment.flop is not a config field"),
      ([dict(name="a", num_steps=1, data=dict(test_split="validation"))],
       r"phase 'a': data.test_split is the run's"),
      ([dict(name="a", num_steps=1, num_epochs=1)], "exactly one of num_epochs, num_steps"),
  ]:
    c.phases = phases
    with pytest.raises(ValueError, match=message):
      phases_lib.resolve_phases(c, steps_per_epoch=10)
  c.phases = [dict(name="no_attention", num_steps=1, model=dict(attention=False))]
  run = run_lib.Run(c, str(tmp_path))
  try:
    with pytest.raises(ValueError, match="change the model's parameters"):
      run.module_for(0)
  finally:
    run.close()


def test_phases_change_data_and_model_and_frozen_modules_keep_their_statistics(
    two_view_config, tmp_path):
  """Phase 1 trains the heads on shop images with dropout off and the VGG backbone (with batch
  norm) frozen; phase 2 trains everything on street images; a third phase would read another
  dataset."""
  c = two_view_config
  c.phases = [dict(name="heads_on_shop", num_steps=2, trainable="(?!backbone/).*",
                   data=dict(domain="shop"), model=dict(dropout_rate=0.0)),
              dict(name="all_on_street", num_steps=2, data=dict(domain="street")),
              dict(name="other_dataset", num_steps=1, data=dict(synth=TINY_SYNTH))]
  workdir = str(tmp_path / "run")
  run = run_lib.Run(c, workdir)
  try:
    for index, domain in enumerate(("shop", "street")):
      data = run.train_data(run.phases[index], seed=0, start_step=0)
      domains = data.columns(("domain",))["domain"]
      assert len(domains) == 16 and (domains == schema.DOMAINS.index(domain)).all()
      assert {int(data.source[i]["domain"]) for i in range(len(data.source))} == {
          schema.DOMAINS.index(domain)}
    other = run.train_data(run.phases[2], seed=0, start_step=0)
    assert len(other.source) == TINY_SYNTH["num_train"]  # the shop-only dataset, all of it
    assert run.module_for(0).dropout_rate == 0.0 and run.module_for(1) is run.module
    initial = run.init_variables()
  finally:
    run.close()
  c.phases = c.phases[:2]  # train the two domain phases (the latest two checkpoints are kept)
  train.train_and_evaluate(c, workdir)
  run = run_lib.Run(c, workdir)
  try:
    final, _ = run.restore_or_init()
    assert int(final.step) == 4
    # Saved at the end of phase 1, with phase 1's optimiser.
    after_1 = run.checkpointer.restore(run.enter_phase(final, 0), step=2)
  finally:
    run.close()
  same = lambda a, b: all(np.array_equal(x, y) for x, y in
                          zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
  assert same(after_1.batch_stats["backbone"], initial["batch_stats"]["backbone"])
  assert same(after_1.params["backbone"], initial["params"]["backbone"])
  assert not same(after_1.params["category_head"], initial["params"]["category_head"])


def test_statistics_follow_the_parameters_of_their_module():
  params = {"backbone": {"bn": {"scale": 0, "bias": 0}, "conv": {"kernel": 0}},
            "head": {"bn": {"scale": 0}}}
  stats = {"backbone": {"bn": {"mean": 0, "var": 0}}, "head": {"bn": {"mean": 0}},
           "free": {"mean": 0}}
  mask = optim.updated_statistics(params, stats, "head/.*|free/.*")
  assert mask == {"backbone": {"bn": {"mean": False, "var": False}},
                  "head": {"bn": {"mean": True}}, "free": {"mean": True}}


class _TwoStreams(nn.Module):
  @nn.compact
  def __call__(self, batch, train=False):
    x = batch["image"].astype(jnp.float32).reshape(len(batch["image"]), -1)
    return {"a": nn.Dense(3, name="stream_a")(x), "b": nn.Dense(2, name="stream_b")(x)}


def test_several_pretrained_files_load_into_their_sub_modules(tmp_path):
  module = _TwoStreams()
  example = {"image": np.zeros((2, 2, 1), np.uint8)}
  init = lambda seed: state.init_variables(module, ("image",), example, seed)
  donor_a, donor_b, target = init(1), init(2), init(3)
  weights.save_variables(tmp_path / "a.safetensors", {"params": donor_a["params"]["stream_a"]})
  weights.save_variables(tmp_path / "b.safetensors", {"params": donor_b["params"]["stream_b"]})
  model_cfg = config_base.base_config().model
  model_cfg.pretrained.update(dict(stream_a=str(tmp_path / "a.safetensors"),
                                   stream_b=str(tmp_path / "b.safetensors")))
  loaded = state.load_pretrained(target, model_cfg)
  for stream, donor in (("stream_a", donor_a), ("stream_b", donor_b)):
    for leaf in ("kernel", "bias"):
      np.testing.assert_array_equal(loaded["params"][stream][leaf], donor["params"][stream][leaf])
  model_cfg.pretrained.stream_b = ""  # an empty path loads nothing
  partly = state.load_pretrained(target, model_cfg)
  np.testing.assert_array_equal(partly["params"]["stream_b"]["kernel"],
                                target["params"]["stream_b"]["kernel"])


def test_triplets_pair_street_anchors_with_shop_images_and_resume_exactly(two_view_config,
                                                                          tmp_path):
  c = two_view_config
  run = run_lib.Run(c, str(tmp_path))
  try:
    source = batch_sources.Tuples(kind="triplet", anchor_domain="street", partner_domain="shop")
    data = run.train_data(run.phases[0], seed=3, start_step=0)
    assert source.describe(data.columns(("item_id", "domain"))).startswith(
        "triplets: 16 of 32 records are anchors")
    batches = source.batches(data)
    first = [next(batches) for _ in range(3)]
    resumed = next(source.batches(run.train_data(run.phases[0], seed=3, start_step=2)))
  finally:
    run.close()
  for name in first[2]:
    np.testing.assert_array_equal(first[2][name], resumed[name], err_msg=name)
  street, shop = schema.DOMAINS.index("street"), schema.DOMAINS.index("shop")
  for batch in first:
    assert batch["image"].shape == batch["negative/image"].shape == (4, 32, 32, 3)
    assert (batch["domain"] == street).all() and (batch["positive/domain"] == shop).all()
    assert (batch["negative/domain"] == shop).all()
    np.testing.assert_array_equal(batch["positive/item_id"], batch["item_id"])
    assert (batch["negative/item_id"] != batch["item_id"]).all()
  blank = source.blank_example(c.data, run.spec)
  assert {"image", "positive/image", "negative/image"} <= set(blank)


def test_systems_are_found_by_model_file_name():
  assert systems.get_system("fpm").name == "fpm"
  with pytest.raises(ValueError, match=r"unknown system 'pose'; known: \[.*'fpm', "
                                       r"'landmark_attention', .*'two_stream'\]"):
    systems.get_system("pose")
  assert {"fpm", "landmark_attention", "mtct", "sister", "two_stream"} <= set(
      systems.known_systems())


def test_early_stopping_counts_evaluations_of_the_last_phase_since_the_best(tmp_path):
  import types

  from fashion_jax import phases as phases_lib

  config = config_base.base_config()
  config.phases = [dict(name="pre", num_steps=10), dict(name="joint", num_steps=10)]
  config.early_stopping_patience = 2
  phases = phases_lib.resolve_phases(config, steps_per_epoch=2)
  best = {"step": None}
  run = types.SimpleNamespace(config=config, phases=phases, workdir=str(tmp_path),
                              checkpointer=types.SimpleNamespace(best_step=lambda: best["step"]))
  evals = {12, 14, 16, 18, 20}
  assert not train._stalled(run, 0, {2, 4, 6, 8, 10}, 10)  # never in an earlier phase
  best["step"] = 8  # the best came before the last phase: its own evaluations count
  assert not train._stalled(run, 1, evals, 12) and train._stalled(run, 1, evals, 14)
  best["step"] = 14
  assert not train._stalled(run, 1, evals, 16) and train._stalled(run, 1, evals, 18)
  config.early_stopping_patience = 0
  assert not train._stalled(run, 1, evals, 20)
  assert train._early_stop_step(run) is None
  (tmp_path / workdir_files.EARLY_STOPPED).write_text('{"step": 18, "best_step": 14}')
  assert train._early_stop_step(run) == 18  # a rerun at step 18 trains no further


def test_an_evaluator_list_scores_each_category_on_its_own(tiny_fpm_config, tmp_path):
  import json

  from fashion_jax import config_check
  from fashion_jax.data import catalog, schema

  tiny_fpm_config.max_steps_per_phase = 1
  tiny_fpm_config.evals = (dict(name="blouse", data=dict(categories=("blouse",))),
                           dict(name="dress", data=dict(categories=("dress",))))
  workdir = tmp_path / "run"
  results = train.train_and_evaluate(tiny_fpm_config, str(workdir))
  own = json.loads((workdir / "results_test.json").read_text())
  data = catalog.Catalog(progress=False)
  codes = data.columns(tiny_fpm_config.data, "test", ("fashionai_category",))
  for name in ("blouse", "dress"):
    saved = json.loads((workdir / f"results_test_{name}.json").read_text())
    expected = int((codes["fashionai_category"] == schema.FASHIONAI_CATEGORIES.index(name)).sum())
    assert saved["data"]["num_examples"] == expected > 0
    assert f"{name} only" in saved["data"]["records"]
    assert set(saved["methods"]) == set(own["methods"]) == set(results)
  assert own["data"]["num_examples"] == len(codes["fashionai_category"])
  tiny_fpm_config.evals = (dict(name="x", data=dict(domain="shop")),)  # training is not its
  with pytest.raises(config_check.ConfigError, match=r"evals\[0\].data.domain: an evaluator"):
    config_check.check(tiny_fpm_config)
  tiny_fpm_config.evals = (dict(name="blouse"), dict(name="blouse"))
  with pytest.raises(config_check.ConfigError, match=r"config.evals\[1\].name = 'blouse'"):
    config_check.check(tiny_fpm_config)
