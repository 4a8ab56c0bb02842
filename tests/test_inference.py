"""`fashion_jax.load(workdir).predict`: input checks and conversions, one compiled function for
every batch size, named results in the original pixels, no flags defined on import, the warp
against OpenCV's, and docs/inference.md's example as written."""

import os
import re
import site
import subprocess
import sys

import cv2
import numpy as np
import pytest
from fixtures.tiny_systems import tiny_config
from PIL import Image

import fashion_jax
from fashion_jax import inference, train
from fashion_jax.data import geometry, schema

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _images(n, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, (40 + 7 * i, 60 - 3 * i, 3), dtype=np.uint8) for i in range(n)]


def test_named_keypoints_in_the_original_pixels_and_one_program(fpm_workdir):
  model = fashion_jax.load(fpm_workdir, batch_size=4)
  assert re.fullmatch(r"(best|latest) \(step \d+\)", model.checkpoint)
  images = _images(6)
  results = model.predict(images)
  assert len(results) == 6
  for image, result in zip(images, results, strict=True):
    h, w = image.shape[:2]
    assert result["image_size"] == (w, h)
    assert list(result["keypoints"]) == list(schema.KEYPOINT_NAMES)
    for x, y, confidence, visible in result["keypoints"].values():
      # Network-input pixels 0..31 cover the whole image: the points lie in it (a half-pixel
      # of the input, scaled, beyond the outer pixel centres at most).
      assert -w / 64 - 1e-6 <= x <= w - 1 + w / 64 and -h / 64 - 1e-6 <= y <= h - 1 + h / 64
      assert visible == (confidence >= inference.VISIBLE_THRESHOLD)
  # Batches of 1, 3 and 6 images run the same compiled program (padded to 4), with the same
  # results for the same image wherever it sits in a batch.
  again = model.predict(images[2:3])
  assert again[0]["keypoints"] == results[2]["keypoints"]
  model.predict(images[:3])
  assert model._compiled._cache_size() == 1
  assert model.predict([]) == []


def test_paths_grey_and_rgba_are_read_as_rgb_and_bad_input_is_named(fpm_workdir, tmp_path):
  model = fashion_jax.load(fpm_workdir)
  rgb = _images(1)[0]
  grey = rgb[..., 0]
  rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=-1)
  path = tmp_path / "photo.png"
  cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
  by_array, by_path, by_rgba, by_grey, by_grey3 = model.predict(
      [rgb, str(path), rgba, grey, np.repeat(grey[..., None], 3, -1)])
  assert by_path == by_array and by_rgba == by_array
  assert by_grey == by_grey3
  with pytest.raises(inference.InputError, match=r"image 1: a float32 array of shape"):
    model.predict([rgb, rgb.astype(np.float32)])
  with pytest.raises(inference.InputError, match=r"image 0: shape \(2, 3, 4, 3\)"):
    model.predict([np.zeros((2, 3, 4, 3), np.uint8)])
  with pytest.raises(inference.InputError, match="a list of images"):
    model.predict(rgb)
  with pytest.raises(ValueError, match="broken.jpg"):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    model.predict([str(tmp_path / "broken.jpg")])
  with pytest.raises(inference.InputError, match="boxes: this model reads the whole image"):
    model.predict([rgb], boxes=[(0, 0, 10, 10)])
  with pytest.raises(inference.InputError, match="masks: this model reads no segmented"):
    model.predict([rgb], masks=[np.ones(rgb.shape[:2], np.uint8)])


def test_a_workdir_without_a_checkpoint_is_one_message(tmp_path, fpm_workdir):
  import shutil

  bare = tmp_path / "bare"
  bare.mkdir()
  for name in ("config.json", "dataset_spec.json"):
    shutil.copy(os.path.join(fpm_workdir, name), bare / name)
  with pytest.raises(FileNotFoundError, match="no checkpoint in .*bare: train first"):
    fashion_jax.load(str(bare))
  with pytest.raises(FileNotFoundError, match="no such workdir"):
    fashion_jax.load(str(tmp_path / "missing"))


def test_importing_the_api_defines_no_flags():
  """None of the package's own (the libraries it uses define theirs, e.g. grain's), so an
  application's --batch_size, --workdir, --images or --config does not collide."""
  code = ("from absl import flags\n"
          "import fashion_jax, fashion_jax.trained, fashion_jax.serving, fashion_jax.export\n"
          "ours = [n for n, f in flags.FLAGS._flags().items()\n"
          "        if flags.FLAGS.find_module_defining_flag(n, '').startswith('fashion_jax')]\n"
          "assert not ours, ours\n"
          "for name in ('batch_size', 'workdir', 'images', 'config', 'out', 'traceback'):\n"
          "  flags.DEFINE_string(name, '', '')\n"
          "print('ok')\n")
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_warp_matches_opencvs_geometry():
  """Pillow's warp with the pipeline's matrix against OpenCV's warpAffine (the evaluation
  pipeline's): the same pixels up to interpolation rounding, on a smooth image."""
  yy, xx = np.mgrid[0:90, 0:70]
  image = np.stack([xx * 3, yy * 2, (xx + yy) * 1.5], -1).clip(0, 255).astype(np.uint8)
  box = np.array([5.0, 8.0, 60.0, 80.0])
  matrix = geometry.box_to_output_affine(box, (48, 40))
  ours = inference.warp(image, matrix, (48, 40)).astype(int)
  theirs = cv2.warpAffine(image, matrix, (40, 48), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT).astype(int)
  assert np.abs(ours - theirs).max() <= 2 and np.abs(ours - theirs).mean() < 1.0
  same = geometry.box_to_output_affine(np.array([0.0, 0.0, 69.0, 89.0]), (90, 70))
  np.testing.assert_array_equal(inference.warp(image, same, (90, 70)), image)


def test_the_docs_example_runs(fpm_workdir, tmp_path):
  text = open(os.path.join(REPO, "docs", "inference.md")).read()
  example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
  assert 'workdir = "workdirs/fpm_runlocal"' in example
  photo = tmp_path / "photo.jpg"
  cv2.imwrite(str(photo), _images(1)[0])
  example = example.replace('"workdirs/fpm_runlocal"', repr(fpm_workdir)).replace(
      '"photo.jpg"', repr(str(photo))).replace('"exports/fpm"', repr(str(tmp_path / "export")))
  done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "neckline_left" in done.stdout


def test_sisters_masks_come_from_the_caller_or_the_segmenter_else_a_refusal(synth_data_dir,
                                                                            tmp_path):
  import jax

  from fashion_jax.models import backbones, weights
  from fashion_jax.segmenter import PersonSegmenter

  workdir = str(tmp_path / "sister")
  train.train_and_evaluate(tiny_config("sister", synth_data_dir), workdir)
  image = _images(1)[0]
  plain = fashion_jax.load(workdir)
  with pytest.raises(inference.InputError, match=r"masks=\[\.\.\.\].*--masks=DIR.*segmenter="
                                                 r"FILE.*--segmenter=FILE"):
    plain.predict([image])
  fcn = backbones.get("fcn_resnet50").build(num_classes=21)  # random weights will do
  variables = jax.jit(lambda: fcn.init(jax.random.PRNGKey(0), np.zeros((1, 64, 64, 3)),
                                       train=False))()
  weights_file = str(tmp_path / "fcn.safetensors")
  weights.save_variables(weights_file, variables)
  segmented = fashion_jax.load(workdir, segmenter=weights_file)
  mask = PersonSegmenter(weights_file)(image)
  assert mask.shape == image.shape[:2]
  assert segmented.predict([image]) == plain.predict([image], masks=[mask])
  person = np.ones(image.shape[:2], np.uint8)
  assert plain.predict([image], masks=[person]) != plain.predict([image], masks=[1 - person])


def test_the_installed_package_loads_predicts_and_exports_outside_the_repository(
    fpm_workdir, synth_data_dir, tmp_path):
  """A wheel of the package (not the editable checkout), installed with pip into a fresh venv and
  run from another directory: the venv's `fashion-jax` console script trains the packaged FPM
  config by name, evaluates and predicts; load, predict, and `fashion-jax export`. The venv
  sees the test environment's dependencies (a .pth line; no network), not its checkout."""
  wheels, venv = tmp_path / "wheels", tmp_path / "venv"
  built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(wheels), REPO],
                         capture_output=True, text=True, timeout=600)
  assert built.returncode == 0, built.stderr[-2000:]
  (wheel,) = wheels.glob("fashion_jax-*.whl")
  made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                        text=True, timeout=600)
  assert made.returncode == 0, made.stderr[-2000:]
  python = venv / "bin" / "python"
  (own_site,) = subprocess.run([str(python), "-c", "import site; print(*site.getsitepackages())"],
                               capture_output=True, text=True, check=True).stdout.split()
  dependencies = [p for p in site.getsitepackages() if os.path.isdir(p)]
  with open(os.path.join(own_site, "test_dependencies.pth"), "w") as f:
    f.write("\n".join(dependencies) + "\n")
  installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=600)
  assert installed.returncode == 0, installed.stderr[-2000:]
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  code = ("import fashion_jax, numpy as np, sys\n"
          f"assert fashion_jax.__file__.startswith({str(venv)!r}), fashion_jax.__file__\n"
          f"model = fashion_jax.load({fpm_workdir!r})\n"
          "(r,) = model.predict([np.zeros((50, 40, 3), np.uint8)])\n"
          "print(len(r['keypoints']), model.checkpoint)\n")
  done = subprocess.run([str(python), "-c", code], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.split()[0] == "24"
  script = venv / "bin" / "fashion-jax"  # the console script pip wrote for the venv's python
  exported = subprocess.run([str(script), "export", f"--workdir={fpm_workdir}",
                             f"--out={tmp_path / 'export'}", "--platforms=cpu"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=600)
  assert exported.returncode == 0, exported.stderr[-3000:]
  assert (tmp_path / "export" / "predict.stablehlo").exists()
  fashion_jax_command = lambda *args: subprocess.run(
      [str(script), *args], cwd=tmp_path, env=env, capture_output=True,
      text=True, timeout=600)
  workdir = str(tmp_path / "trained_by_the_script")
  tiny = ["--config.data.name=fashion_synth", f"--config.data.data_dir={synth_data_dir}",
          "--config.data.image_size=(32,32)", "--config.data.synth.image_size=64",
          "--config.data.synth.num_train=48", "--config.data.synth.num_validation=16",
          "--config.data.synth.num_test=16", "--config.data.synth.views_per_item=1",
          "--config.max_steps_per_phase=2", "--config.batch_size=8", "--config.num_devices=1",
          "--config.model.num_stages=2", "--config.progress=False", "--config.eval.baselines=()"]
  trained = fashion_jax_command("train", "--config=fpm:runlocal", f"--workdir={workdir}", *tiny)
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert "fpm (step 2)" in trained.stdout
  evaluated = fashion_jax_command("eval", f"--workdir={workdir}")
  assert evaluated.returncode == 0 and "fpm (step 2)" in evaluated.stdout, evaluated.stderr[-2000:]
  photos = tmp_path / "photos"
  photos.mkdir()
  Image.fromarray(np.full((60, 50, 3), 128, np.uint8)).save(photos / "a.jpg")
  predicted = fashion_jax_command("predict", f"--workdir={workdir}", f"--images={photos}",
                                  f"--out={tmp_path / 'predictions'}")
  assert predicted.returncode == 0, predicted.stderr[-3000:]
  assert (tmp_path / "predictions" / "predictions.json").exists()
  assert (tmp_path / "predictions" / "a.png").exists()  # the overlay
  no_variant = fashion_jax_command("ablate", "--config=fpm:runlocal", f"--workdir={workdir}_a")
  assert no_variant.returncode == 2 and "runlocal, stages=<int>" in no_variant.stderr
