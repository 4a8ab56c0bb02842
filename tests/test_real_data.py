"""Every paper config trains and evaluates on every real dataset it names, prepared by
`fashion_jax.data.prepare` from fixtures written in the published formats (tests/fixtures/real.py).

The configs are the papers' own files with their `:runlocal` sizes (a CPU cannot train the
paper sizes in a test) pointed at the prepared data with `data.data_dir`, as a user does.
"""

import json
import os

import numpy as np
import pytest
from fixtures.more_real import write_dcsa, write_fashionai, write_masks, write_shop_street
from fixtures.real import write_deepfashion_coarse, write_deepfashion_fine

from configs import fpm as fpm_config
from configs import landmark_attention as lda_config
from configs import mtct as mtct_config
from configs import sister as sister_config
from configs import two_stream as tsmt_config
from fashion_jax import config_check, train
from fashion_jax import run as run_lib
from fashion_jax import workdir as workdir_files
from fashion_jax.data import catalog, prepare, schema, splits


def _prepared(tmp_path, dataset, write, config=None):
  manual = write(tmp_path / "manual")
  data_dir = tmp_path / "tfds"
  summary = prepare.prepare(dataset, manual, data_dir, config=config)
  assert not summary.skipped, summary
  return str(data_dir), summary


def _small(config, data_dir):
  config.data.data_dir = data_dir  # the paper's dataset, as a user selects it
  config.batch_size = config.eval_batch_size = 4
  config.num_devices, config.max_steps_per_phase = 1, 2
  config.progress, config.log_every_steps = False, 1
  config.data.num_threads = 1
  config.model.from_scratch = True  # no ImageNet files here (the refusal is tested below)
  return config


def _results(workdir, name="test"):
  with open(os.path.join(workdir, f"results_{name}.json")) as f:
    return json.load(f)


def _all_finite(flat: dict) -> bool:
  return all(v is not None and np.all(np.isfinite(v)) for v in flat.values()
             if isinstance(v, float | list))


def test_fpm_on_fashionai_holds_out_labelled_images_for_eval_and_test(tmp_path):
  """FashionAI as downloaded: labelled train/ and a test/ CSV without keypoints. The unlabelled
  split is never scored; a seeded hold-out of labelled images stands in, stated in the results."""
  data_dir, summary = _prepared(tmp_path, "fashionai_keypoints",
                                lambda root: write_fashionai(root, num_train=32, num_test=4))
  assert summary.examples == {"train": 32, "test": 4}
  config = _small(fpm_config.get_config("runlocal"), data_dir)
  config.data.holdout.update(dict(validation=0.2, test=0.2))
  config.model.update(dict(feature_widths=(8, 8, 8, 8), stage1_widths=(16, 16), refine_width=8))
  workdir = str(tmp_path / "fpm")
  results = train.train_and_evaluate(config, workdir)
  saved = _results(workdir)
  assert saved["data"]["dataset"] == "fashionai_keypoints"
  assert saved["data"]["records"].startswith("hold-out of 'train'")
  assert "split 'test' has no keypoints labels" in saved["data"]["records"]
  assert saved["eval_data"]["records"].startswith("hold-out of 'train'")
  assert list(results) == ["fpm (step 2)", "untrained", "training mean"]
  for method in saved["methods"].values():
    assert method["fashionai_ne/num_counted"] > 0 and np.isfinite(method["fashionai_ne/mean"])

  # The hold-outs are disjoint from training and from each other, and are what the documented
  # rule gives: SHA-256 of (seed, image id) below 0.2 is test, in [0.2, 0.4) eval.
  data = catalog.Catalog(progress=False)
  chosen = data.selections(config.data, ("keypoints",))
  ids = data.columns(config.data, "train", ("image_id",))["image_id"]
  u = splits.unit_hash([f"image:{i.decode()}" for i in ids], seed=0)
  np.testing.assert_array_equal(chosen["test"].indices, np.flatnonzero(u < 0.2))
  np.testing.assert_array_equal(chosen["eval"].indices, np.flatnonzero((u >= 0.2) & (u < 0.4)))
  np.testing.assert_array_equal(chosen["train"].indices, np.flatnonzero(u >= 0.4))


def test_fpm_paper_config_reads_blouses_trousers_and_dresses_in_the_papers_proportions(tmp_path):
  """Section 4: blouses, trousers and dresses; 18,420 / 8,107 / 5,076 train / val / test."""
  data_dir, _ = _prepared(tmp_path, "fashionai_keypoints",
                          lambda root: write_fashionai(root, num_train=60, num_test=2))
  config = fpm_config.get_config()
  assert tuple(config.data.categories) == ("blouse", "trousers", "dress")
  assert config.data.holdout.validation == pytest.approx(8107 / 31603)
  assert config.data.holdout.test == pytest.approx(5076 / 31603)
  assert [(e["name"], tuple(e["data"]["categories"])) for e in config.evals] == [
      ("blouse", ("blouse",)), ("trousers", ("trousers",)), ("dress", ("dress",))]
  assert fpm_config.get_config("runlocal").evals == ()  # the quickstart prints one table
  assert [dict(e) for e in mtct_config.get_config("runlocal").evals] == [
      dict(name="shop", data=dict(eval_domain="shop"))]
  config.data.data_dir = data_dir
  data = catalog.Catalog(progress=False)
  chosen = data.selections(config.data, ("keypoints",))
  codes = data.columns(config.data, "train", ("fashionai_category", "image_id"))
  wanted = [schema.FASHIONAI_CATEGORIES.index(c) for c in ("blouse", "trousers", "dress")]
  u = splits.unit_hash([f"image:{i.decode()}" for i in codes["image_id"]], seed=0)
  kept = np.isin(codes["fashionai_category"], wanted)
  f_test, f_eval = config.data.holdout.test, config.data.holdout.validation
  np.testing.assert_array_equal(chosen["test"].indices, np.flatnonzero(kept & (u < f_test)))
  np.testing.assert_array_equal(chosen["eval"].indices,
                                np.flatnonzero(kept & (u >= f_test) & (u < f_test + f_eval)))
  np.testing.assert_array_equal(chosen["train"].indices,
                                np.flatnonzero(kept & (u >= f_test + f_eval)))
  assert 0 < kept.sum() < len(kept) and "blouse/trousers/dress only" in chosen["test"].description
  config.data.categories = ("blouse", "jumpsuit")
  with pytest.raises(config_check.ConfigError, match=r"config.data.categories = .*jumpsuit"):
    config_check.check(config)


def test_fpm_trains_with_the_papers_data_settings_and_scores_each_category(tmp_path):
  """The paper config's categories, proportional hold-outs and per-category evaluators, on
  FashionAI as downloaded, through a short training run."""
  data_dir, _ = _prepared(tmp_path, "fashionai_keypoints",
                          lambda root: write_fashionai(root, num_train=60, num_test=2))
  paper = fpm_config.get_config()
  config = _small(fpm_config.get_config("runlocal"), data_dir)
  config.data.categories, config.data.holdout, config.evals = (
      paper.data.categories, paper.data.holdout, paper.evals)
  config.model.update(dict(feature_widths=(8, 8, 8, 8), stage1_widths=(16, 16), refine_width=8))
  workdir = tmp_path / "fpm"
  results = train.train_and_evaluate(config, str(workdir))
  own = _results(str(workdir))
  assert "blouse/trousers/dress only" in own["data"]["records"]
  total = 0
  for name in ("blouse", "trousers", "dress"):
    saved = _results(workdir, f"test_{name}")
    assert f"{name} only" in saved["data"]["records"]
    assert set(saved["methods"]) == set(results)
    total += saved["data"]["num_examples"]
    for method in saved["methods"].values():
      assert method["paper_ne/num_counted"] > 0 and np.isfinite(method["paper_ne/mean"])
  assert total == own["data"]["num_examples"]  # the three categories split the test hold-out


def test_fpm_refuses_a_hold_out_of_nothing(tmp_path):
  data_dir, _ = _prepared(tmp_path, "fashionai_keypoints", write_fashionai)
  config = _small(fpm_config.get_config("runlocal"), data_dir)
  config.data.holdout.test = 0.0
  with pytest.raises(ValueError, match=r"no test data: split 'test' has no keypoints labels, "
                                       r"and data.holdout.test = 0.0 holds nothing out"):
    run_lib.Run(config, str(tmp_path / "w"))


@pytest.mark.parametrize("annotations", ["coarse", "fine"])
def test_landmark_attention_on_deepfashion(tmp_path, annotations):
  """The paper's dataset, both annotation releases: validation selects, test reports."""
  write = write_deepfashion_coarse if annotations == "coarse" else write_deepfashion_fine
  sizes = (("train", 8), ("val", 4), ("test", 4))
  data_dir, summary = _prepared(tmp_path, "deepfashion_attributes",
                                lambda root: write(root, split_sizes=sizes), config=annotations)
  assert summary.examples == {"train": 8, "validation": 4, "test": 4}
  config = _small(lda_config.get_config("runlocal"), data_dir)
  config.data.builder_config = annotations
  config.eval_every_epochs = 1.0  # an evaluation (and a best checkpoint) within the 2 steps
  workdir = str(tmp_path / "lda")
  train.train_and_evaluate(config, workdir)
  saved = _results(workdir)
  assert saved["data"] == {"dataset": f"deepfashion_attributes/{annotations}",
                           "records": "'test'", "num_examples": 4}
  assert saved["eval_data"]["records"] == "'validation'"
  trained, untrained, mean = saved["methods"].values()
  assert trained["category/num_images"] == 4
  for method in (trained, untrained, mean):
    assert np.isfinite(method["landmarks/mean"]) and np.isfinite(method["attributes/all/top3"])
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert any(json.loads(line)["split"] == "eval" for line in f)
  _predicts_with_the_datasets_names(workdir, tmp_path)


def _predicts_with_the_datasets_names(workdir, tmp_path):
  """A model trained on the real format, used as a user would: named by its dataset's
  categories and attributes, a garment box, and the same numbers from its export."""
  import fashion_jax
  from fashion_jax import export

  spec = workdir_files.load_dataset_spec(workdir)
  photo = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
  model = fashion_jax.load(workdir)
  (result,) = model.predict([photo], boxes=[(10, 20, 70, 110)])
  margin = workdir_files.load_config(workdir).data.bbox_margin  # the box, grown by this per side
  np.testing.assert_allclose(result["crop"], [10 - 61 * margin, 20 - 91 * margin,
                                              70 + 61 * margin, 110 + 91 * margin])
  assert {name for name, _ in result["category"]} <= set(spec.category_names)
  assert list(result["attributes"]) == list(spec.attribute_names)
  export.export_model(workdir, str(tmp_path / "export"), platforms=("cpu",))
  served = fashion_jax.load(str(tmp_path / "export")).predict([photo], boxes=[(10, 20, 70, 110)])
  np.testing.assert_allclose(served[0]["landmarks"]["left_collar"],
                             result["landmarks"]["left_collar"], atol=1e-5)
  assert served[0]["category"] == result["category"]


@pytest.mark.parametrize("top_folder", [True, False])
def test_clothing_attributes_prepares_from_the_unpacked_archive(tmp_path, top_folder):
  manual = write_dcsa(tmp_path / "manual", num_images=6, top_folder=top_folder)
  summary = prepare.prepare("clothing_attributes", manual, tmp_path / "tfds")
  assert summary.examples == {"train": 6}
  assert any("top folder ClothingAttributeDataset/" in note for note in summary.notes) == (
      top_folder)


def test_two_stream_on_deepfashion_coarse_with_both_phases(tmp_path):
  """The paper's schedule (landmark stream, then joint) on the paper's dataset."""
  data_dir, _ = _prepared(tmp_path, "deepfashion_attributes", write_deepfashion_coarse,
                          config="coarse")
  config = _small(tsmt_config.get_config("runlocal"), data_dir)
  config.model.update(dict(hourglass_features=8, resnet_width=4))
  config.eval_every_epochs = 1.0
  workdir = str(tmp_path / "tsmt")
  train.train_and_evaluate(config, workdir)
  saved = _results(workdir)
  assert saved["data"]["records"] == "'test'" and saved["eval_data"]["records"] == "'validation'"
  methods = list(saved["methods"])  # the best checkpoint's step: 2 or 4 on 4 images
  assert methods[0].startswith("two_stream (step ") and methods[1:] == ["untrained",
                                                                       "training mean"]
  for method in saved["methods"].values():
    assert np.isfinite(method["landmarks/mean"]) and np.isfinite(method["category/top5"])
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    phases = [json.loads(line) for line in f]
  trained = [r for r in phases if r["split"] == "train"]
  assert [r["step"] for r in trained] == [1, 2, 3, 4]
  assert "loss/category" not in trained[1] and "loss/category" in trained[2]  # phase 2 joins
  assert os.path.exists(os.path.join(workdir, "predictions_test.png"))


@pytest.mark.parametrize("variant", ["", "fcn_white,"])
def test_sister_network_on_clothing_attributes_with_masks_and_folds(tmp_path, variant):
  """DCSA has one labelled split: the test role is a cross-validation fold, a hold-out of the
  other folds selects the checkpoint; the segmented stream (or FCN-White's one stream) reads the
  prepared masks."""
  manual = write_dcsa(tmp_path / "manual", num_images=48, top_folder=True)
  root = manual / "ClothingAttributeDataset"
  masks = write_masks(root, [f"images/{n:06d}.jpg" for n in range(1, 49)], tmp_path / "masks")
  prepare.prepare("clothing_attributes", manual, tmp_path / "tfds", masks_dir=masks)
  config = _small(sister_config.get_config(f"{variant}runlocal"), str(tmp_path / "tfds"))
  config.model.update(dict(width=4, segmented_width=4, fc_width=8))
  workdir = str(tmp_path / "sister")
  train.train_and_evaluate(config, workdir)
  saved = _results(workdir)
  assert saved["data"]["dataset"] == "clothing_attributes"
  assert saved["data"]["records"].startswith("fold 0 of 4 of 'train' (12 records")
  assert saved["eval_data"]["records"].startswith("hold-out of 'train'")
  assert list(saved["methods"]) == ["sister (step 2)", "untrained", "training mean"]
  for method in saved["methods"].values():
    assert 0 <= method["dcsa/macc"] <= 1 and method["dcsa/num_labels"] == 26


def test_mtct_on_shop_street_csvs_runs_both_stages(tmp_path):
  """The curriculum on the X-Domain-style layout: shop stage, then street triplets; scored on
  street test images; the prepared csv_<N>attr config is found without naming it."""
  data_dir, summary = _prepared(tmp_path, "shop_street",
                                lambda root: write_shop_street(root, num_items=16))
  assert summary.config == "csv_9attr"
  config = _small(mtct_config.get_config("runlocal"), data_dir)
  config.model.update(dict(fc_width=8, width_scale=0.05))
  workdir = str(tmp_path / "mtct")
  train.train_and_evaluate(config, workdir)
  saved = _results(workdir)
  assert saved["data"]["dataset"] == "shop_street/csv_9attr"
  assert saved["data"]["records"] == "'test', street only (4 records)"
  methods = list(saved["methods"])  # the best checkpoint's step: 2 or 4 on 2 images
  assert methods[0].startswith("mtct (step ") and methods[1:] == ["untrained", "training mean"]
  for method in saved["methods"].values():
    assert 0 <= method["attributes/mAP_cls"] <= 1 and method["attributes/num_images"] == 4
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if '"train"' in line]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]
  assert "loss/triplet" in rows[-1] and "loss/triplet" not in rows[0]


@pytest.mark.parametrize("module, variant, missing", [
    (lda_config, "", ["backbone"]), (tsmt_config, "", ["classification_stream"]),
    (mtct_config, "", ["trunk"]), (sister_config, "", ["main_stream", "segmented_stream"]),
    (sister_config, "fcn_white,", ["main_stream"]), (sister_config, "baseline,", ["main_stream"])])
def test_a_paper_config_on_real_data_refuses_random_imagenet_weights(module, variant, missing,
                                                                     tmp_path):
  config = module.get_config(f"{variant}runlocal")
  assert sorted(config.model.pretrained) == sorted(missing)  # only networks the model has
  config.data.data_dir = str(tmp_path / "tfds")  # selects the paper's (real) dataset
  with pytest.raises(config_check.ConfigError) as refused:
    train.train_and_evaluate(config, str(tmp_path / "w"))
  message = str(refused.value)
  for name in missing:
    assert f"--config.model.pretrained.{name}=FILE" in message
  assert "docs/pretrained.md" in message and "--config.model.from_scratch=True" in message
  assert not (tmp_path / "w").exists() and not (tmp_path / "tfds").exists()  # nothing written
  config.model.from_scratch = True
  config_check.check_pretrained(config)  # deliberate: allowed
  synthetic = module.get_config(f"{variant}runlocal")
  config_check.check_pretrained(synthetic)  # the synthetic default trains from scratch
  config.model.from_scratch = False
  for name in missing:
    config.model.pretrained[name] = "weights.safetensors"
  config_check.check_pretrained(config)
