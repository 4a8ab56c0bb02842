"""SisterNetwork: the paper's streams (torchvision's parameter counts), every variant, masked
labels, MACC by hand, masks through `prepare`, cross-validation and a short run."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_SYNTH
from fixtures.more_real import write_dcsa, write_masks

from configs import sister as sister_config
from fashion_jax import metrics, train
from fashion_jax import run as run_lib
from fashion_jax.data import datasets, formats, pipeline, prepare, schema
from fashion_jax.experiments import cross_validate
from fashion_jax.systems import sister

# torchvision's parameter counts without the 1000-way classifier (2048 * 1000 + 1000).
RESNET_PARAMS = {"resnet50": 25_557_032 - 2_049_000, "resnet101": 44_549_160 - 2_049_000,
                 "resnet152": 60_192_808 - 2_049_000}
OUT = 23 + 7 + 3 + 3


def _params(arg):
  model = sister.make_module(sister_config.get_config(arg).model, schema.DatasetSpec())
  batch = {"image": jnp.zeros((1, 224, 224, 3), jnp.uint8),
           "segmented_image": jnp.zeros((1, 224, 224, 3), jnp.uint8)}
  out, variables = jax.eval_shape(lambda: model.init_with_output(jax.random.PRNGKey(0), batch))
  count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
  return out, {k: count(v) for k, v in variables["params"].items()}


@pytest.mark.parametrize("arg,expected", [
    ("baseline", {"main_stream": RESNET_PARAMS["resnet50"], "main_fc": 2048 * 1024 + 1024,
                  "output": 1024 * OUT + OUT}),
    (None, {"main_stream": RESNET_PARAMS["resnet50"], "segmented_stream":
            RESNET_PARAMS["resnet50"], "main_fc": 2048 * 1024 + 1024,
            "segmented_fc": 2048 * 1024 + 1024, "output": 1024 * OUT + OUT}),
    ("backbone=resnet152", {"main_stream": RESNET_PARAMS["resnet152"],
                            "segmented_stream": RESNET_PARAMS["resnet50"]}),
    ("sister_b", {"main_stream": RESNET_PARAMS["resnet50"],
                  "segmented_stream": RESNET_PARAMS["resnet50"], "output": 2048 * OUT + OUT}),
    ("gate_single", {"gate": 2048 + 1, "output": 1024 * OUT + OUT}),
    ("gate_add", {"gate": 2048 * 1024 + 1024, "output": 1024 * OUT + OUT}),
    ("gate_concat", {"gate": 2048 * 1024 + 1024, "output": 2048 * OUT + OUT}),
    ("twin,backbone=resnet101", {"main_stream": RESNET_PARAMS["resnet101"],
                                 "segmented_stream": RESNET_PARAMS["resnet101"]}),
])
def test_streams_and_heads_have_the_papers_sizes(arg, expected):
  out, counts = _params(arg)
  for name, value in expected.items():
    assert counts[name] == value, (name, counts)
  if arg in ("baseline",):
    assert set(counts) == set(expected)
  assert out["binary_logits"].shape == (1, 23)
  assert [out[f"{n}_logits"].shape[-1] for n in sister.MULTICLASS] == [7, 3, 3]


def test_batch_sizes_follow_the_paper():
  assert sister_config.get_config("baseline").batch_size == 64
  assert sister_config.get_config("baseline,backbone=resnet101").batch_size == 32
  assert sister_config.get_config().batch_size == 32
  assert sister_config.get_config("backbone=resnet152").batch_size == 16
  assert sister_config.get_config("sister_b,backbone=resnet152").batch_size == 16
  assert sister_config.get_config("sister_b,backbone=resnet101").batch_size == 32
  assert sister_config.get_config("gate_add").model.segmented_stage_sizes == (3, 4, 6, 3)
  # Table 1's single-stream models: "Resnet-50 at batch size 64 to select the segmentation".
  fcn_white = sister_config.get_config("fcn_white")
  assert fcn_white.batch_size == 64 and fcn_white.data.segmented == "white"
  assert fcn_white.model.stage_sizes == (3, 4, 6, 3)


def test_fcn_white_is_one_resnet_50_that_sees_only_the_segmented_image():
  out, counts = _params("fcn_white")
  assert counts == {"main_stream": RESNET_PARAMS["resnet50"], "main_fc": 2048 * 1024 + 1024,
                    "output": 1024 * OUT + OUT}
  config = sister_config.get_config("fcn_white,runlocal")
  model = sister.make_module(config.model, schema.DatasetSpec())
  rng = np.random.default_rng(0)
  batch = {k: jnp.asarray(rng.integers(0, 256, (2, 32, 32, 3)), jnp.uint8)
           for k in ("image", "segmented_image")}
  variables = model.init(jax.random.PRNGKey(0), batch)
  out = model.apply(variables, batch)
  other_photo = dict(batch, image=jnp.zeros_like(batch["image"]))
  np.testing.assert_array_equal(model.apply(variables, other_photo)["binary_logits"],
                                out["binary_logits"])
  other_mask = dict(batch, segmented_image=jnp.full_like(batch["image"], 255))
  assert not np.allclose(model.apply(variables, other_mask)["binary_logits"],
                         out["binary_logits"])


def test_missing_labels_give_no_loss_and_no_gradient():
  rng = np.random.default_rng(0)
  outputs = {"binary_logits": jnp.asarray(rng.normal(size=(3, 23)), jnp.float32),
             **{f"{n}_logits": jnp.asarray(rng.normal(size=(3, k)), jnp.float32)
                for n, k in zip(sister.MULTICLASS, sister.CLASS_COUNTS, strict=True)}}
  labels = rng.integers(0, 2, (3, 26)).astype(np.int8)
  labels[:, 23:] = [[6, 2, 1], [0, 0, 0], [3, 1, 2]]
  labels[0, 4], labels[1, 23], labels[2, :] = -1, -1, -1  # missing; image 2 has nothing
  batch = {"dcsa_labels": labels, "valid": np.array([True, True, True])}
  grads = jax.grad(lambda o: sister.loss(o, batch, None)[0])(outputs)
  assert float(grads["binary_logits"][0, 4]) == 0 and float(grads["category_logits"][1].sum()) == 0
  assert float(jnp.abs(grads["binary_logits"][2]).sum()) == 0
  assert float(grads["binary_logits"][0, 3]) != 0
  # By hand: the mean over 26 labels of each label's mean loss over its present images.
  per_label = sister.per_label_losses(outputs, labels, batch["valid"])
  z = np.asarray(outputs["binary_logits"])[:2, 5]
  y = labels[:2, 5]
  expected = np.mean(np.log1p(np.exp(-z)) * y + np.log1p(np.exp(z)) * (1 - y))
  assert float(per_label[5]) == pytest.approx(expected, rel=1e-5)
  assert float(sister.loss(outputs, batch, None)[0]) == pytest.approx(float(per_label.mean()))


def test_macc_by_hand():
  labels = np.full((4, 26), -1, np.int8)
  labels[:, 0] = [1, 0, 1, -1]  # black: 3 present
  labels[:, 1] = [0, 0, -1, -1]  # blue: 2 present
  labels[:, 23] = [6, 2, 2, 0]  # category
  binary = np.full((4, 23), 0.2)
  binary[:, 0] = [0.9, 0.7, 0.4, 0.9]  # right, wrong, wrong, (missing)
  binary[:, 1] = [0.1, 0.6, 0.9, 0.9]  # right, wrong
  category = np.eye(7)[[6, 2, 1, 0]]  # right, right, wrong, right
  result = metrics.dcsa_accuracy(binary_scores=binary,
                                 class_scores=[category, np.ones((4, 3)), np.ones((4, 3))],
                                 labels=labels, valid=np.array([True, True, True, True]))
  assert result["per_label"]["black"] == pytest.approx(1 / 3)
  assert result["per_label"]["blue"] == pytest.approx(1 / 2)
  assert result["per_label"]["category"] == pytest.approx(3 / 4)
  assert np.isnan(result["per_label"]["red"]) and result["num_labels"] == 3
  assert result["macc"] == pytest.approx((1 / 3 + 1 / 2 + 3 / 4) / 3)


def test_segmented_image_is_the_image_with_a_white_background(two_view_free_config):
  c = two_view_free_config
  example = schema.empty_example(0)
  image = np.full((8, 8, 3), 40, np.uint8)
  mask = np.zeros((8, 8, 1), np.uint8)
  mask[2:6, 2:6] = 255
  example.update(image=image, mask=mask, has_mask=np.bool_(True), image_id="x")
  c.data.image_size, c.data.crop = (8, 8), "image"
  out = pipeline.make_example_fn(c.data, train=False)(example, np.random.default_rng(0))
  seg = out["segmented_image"]
  assert (seg[2:6, 2:6] == 40).all() and (seg[0] == 255).all() and (out["image"] == 40).all()


@pytest.fixture
def two_view_free_config():
  return sister_config.get_config("runlocal")


def _dcsa_with_masks(tmp_path, num_images=48, masks=True):
  manual = write_dcsa(tmp_path / "manual", num_images=num_images)
  masks_dir = None
  if masks:
    ids = [f"images/{n:06d}.jpg" for n in range(1, num_images + 1)]
    masks_dir = write_masks(manual, ids, tmp_path / "masks")
  return manual, masks_dir


def test_prepare_stores_masks_and_refuses_missing_or_misfit_ones(tmp_path):
  manual, masks = _dcsa_with_masks(tmp_path, num_images=6)
  summary = prepare.prepare("clothing_attributes", manual, tmp_path / "tfds", masks_dir=masks)
  builder = datasets.get_builder("clothing_attributes", data_dir=tmp_path / "tfds")
  spec = datasets.dataset_spec(builder)
  assert "mask" in spec.labels and any("masks read from" in n for n in summary.notes)
  example = builder.as_data_source()["train"][2]
  assert example["has_mask"] and example["mask"].shape[:2] == example["image"].shape[:2]
  assert set(np.unique(example["mask"])) == {0, 255}
  assert not any("all zero" in n for n in summary.notes)
  from PIL import Image
  for name in ("000001.png", "000004.png"):  # nothing segmented: stored, and said
    size = Image.open(masks / "images" / name).size
    Image.new("L", size).save(masks / "images" / name)
  summary = prepare.prepare("clothing_attributes", manual, tmp_path / "zeros", masks_dir=masks)
  (note,) = [n for n in summary.notes if "all zero" in n]
  assert note.startswith("2 mask(s) are all zero") and "000001.png" in note
  assert "000004.png" in note and "2 mask(s) are all zero" in prepare.format_summary(summary)
  (masks / "images" / "000003.png").unlink()
  with pytest.raises(FileNotFoundError, match=r"(?s)1 image\(s\) have no mask .*000003.png"):
    prepare.prepare("clothing_attributes", manual, tmp_path / "other", masks_dir=masks)
  Image.new("L", (3, 3)).save(masks / "images" / "000003.png")
  with pytest.raises(formats.AnnotationError, match=r"(?s)000003.png: is 3x3 but the image"):
    prepare.prepare("clothing_attributes", manual, tmp_path / "third", masks_dir=masks)


def test_a_segmented_run_refuses_a_dataset_without_masks(tmp_path):
  manual, _ = _dcsa_with_masks(tmp_path, num_images=6, masks=False)
  prepare.prepare("clothing_attributes", manual, tmp_path / "tfds")
  c = sister_config.get_config("runlocal")
  c.data.data_dir = str(tmp_path / "tfds")
  with pytest.raises(ValueError, match=r"needs masks, and clothing_attributes has none"):
    run_lib.Run(c, str(tmp_path / "w"))


def _tiny(c):
  c.model.update(dict(stage_sizes=(1, 1, 1, 1), segmented_stage_sizes=(1, 1, 1, 1), width=4,
                      segmented_width=4, fc_width=8))
  c.data.image_size, c.data.num_threads = (32, 32), 1
  c.batch_size, c.num_devices, c.max_steps_per_phase = 8, 1, 2
  c.progress, c.log_every_steps = False, 1
  c.model.from_scratch = True  # the fixtures' runs have no ImageNet files to load
  return c


def test_cross_validation_on_dcsa_fixtures_runs_each_fold_once(tmp_path):
  manual, masks = _dcsa_with_masks(tmp_path)
  prepare.prepare("clothing_attributes", manual, tmp_path / "tfds", masks_dir=masks)
  config_file = tmp_path / "tiny_sister.py"
  config_file.write_text(
      "from configs import sister\nimport test_sister\n\n"
      "def get_config(arg=None):\n"
      "  return test_sister._tiny(sister.get_config(arg))\n")
  overrides = [f"data.data_dir={tmp_path / 'tfds'}", "data.num_folds=4"]
  report = cross_validate.cross_validate(f"{config_file}:runlocal", str(tmp_path / "cv"),
                                         folds=[0, 2], overrides=overrides)
  values = []
  for fold in (0, 2):
    with open(tmp_path / "cv" / f"fold{fold}" / "results_test.json") as f:
      saved = json.load(f)
    assert saved["data"]["records"].startswith(f"fold {fold} of 4 of 'train' (12 records")
    assert saved["eval_data"]["records"].startswith("hold-out of 'train'")
    values.append(next(iter(saved["methods"].values()))["dcsa/macc"])
  cell = report["summary"]["model"]["dcsa/macc"]
  assert cell["values"] == values and cell["mean"] == pytest.approx(np.mean(values))
  assert "dcsa/per_label/black" in open(tmp_path / "cv" / "cv.md").read()
  with pytest.raises(ValueError, match=r"folds \[4\] are not in \[0, 4\)"):
    cross_validate.cross_validate(f"{config_file}:runlocal", str(tmp_path / "cv"), folds=[4],
                                  overrides=overrides)


def test_short_run_on_synthetic_street_views_reports_macc_and_baselines(synth_data_dir,
                                                                          tmp_path):
  c = _tiny(sister_config.get_config("runlocal"))
  c.data.name, c.data.data_dir = "fashion_synth", synth_data_dir
  c.data.synth.update(TINY_SYNTH)
  c.data.num_folds = 0
  c.max_steps_per_phase, c.eval.baselines = 3, ("untrained", "training_mean")
  workdir = str(tmp_path / "sister")
  results = train.train_and_evaluate(c, workdir)
  assert list(results) == ["sister (step 3)", "untrained", "training mean"]
  for r in results.values():
    assert 0 <= r["dcsa"]["macc"] <= 1 and r["dcsa"]["num_labels"] == 25  # gender: never
  with open(os.path.join(workdir, "results_test.json")) as f:
    assert "dcsa/per_label/necktie" in next(iter(json.load(f)["methods"].values()))
  assert os.path.getsize(os.path.join(workdir, "predictions_test.png")) > 1000  # the two inputs
