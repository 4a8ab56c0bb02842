"""The predict command: images found by folder or glob, outputs named by the path relative to the
images' root, overlays at the photo's size, boxes and masks by that name, the benchmark writers
read back by the package's own parsers, and one-paragraph errors with distinct exit statuses."""

import json
import os
import shutil
import subprocess
import sys
import types

import cv2
import numpy as np
import pytest
from fixtures.tiny_systems import tiny_config
from PIL import Image

import fashion_jax
from fashion_jax import inference, predict, prediction_lists, train, visualize
from fashion_jax import workdir as workdir_files
from fashion_jax.data import deepfashion_lists, formats, schema
from fashion_jax.data.fashionai_keypoints import fashionai_keypoints

ENV = dict(os.environ, JAX_PLATFORMS="cpu")  # no accelerator plugin messages in stderr
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def attention_workdir(synth_data_dir, tmp_path_factory):
  """Landmark attention (landmarks, category, attributes; crops to the garment box)."""
  workdir = str(tmp_path_factory.mktemp("attention") / "run")
  train.train_and_evaluate(tiny_config("landmark_attention", synth_data_dir), workdir)
  return workdir


def _cli(*args, timeout=300):
  return subprocess.run([sys.executable, "-m", "fashion_jax.predict", *args], cwd=REPO, env=ENV,
                        capture_output=True, text=True, timeout=timeout)


def _photo(path, w, h, seed=0):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  rng = np.random.default_rng(seed)
  Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def _size(path):
  with Image.open(path) as image:
    return image.size


def test_points_follow_the_image_scale(fpm_workdir):
  model = fashion_jax.load(fpm_workdir, batch_size=2)
  rng = np.random.default_rng(0)
  small = cv2.resize(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), (64, 48))
  large = cv2.resize(small, (128, 96), interpolation=cv2.INTER_LINEAR)
  out_small, out_large = model.predict([small, large])
  inputs = np.stack([inference.prepare(im, None, None, model.preprocess)[0]["image"]
                     for im in (small, large)])
  raw = model.raw({"image": inputs})
  assert raw["keypoints"].shape == (2, 24, 2)  # in the 32x32 network input
  # The whole image fills the input without keeping the aspect ratio, about pixel centres:
  # x_original + 0.5 = (x_input + 0.5) * W / 32, and the same for y with H.
  for out, (w, h), points in ((out_small, (64, 48), raw["keypoints"][0]),
                              (out_large, (128, 96), raw["keypoints"][1])):
    assert out["image_size"] == (w, h) and out["crop"] == (0, 0, w - 1, h - 1)
    found = np.array([out["keypoints"][n][:2] for n in schema.KEYPOINT_NAMES])
    expected = (points + 0.5) * np.array([w / 32, h / 32]) - 0.5
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-3)
  # Where the network placed a point in the same input pixel, the large image's is doubled.
  same = np.all(raw["keypoints"][0] == raw["keypoints"][1], axis=-1)
  pts = [np.array([o["keypoints"][n][:2] for n in schema.KEYPOINT_NAMES])
         for o in (out_small, out_large)]
  np.testing.assert_allclose(pts[1][same] + 0.5, 2 * (pts[0][same] + 0.5), atol=1e-3)
  # The results carry the last stage's points (the keypoints), not every stage's.
  np.testing.assert_allclose(raw["stage_keypoints"][:, -1], raw["keypoints"], atol=1e-6)
  with pytest.raises(predict.CommandLineError, match="--deepfashion_landmarks: this fpm model "
                     "predicts no landmarks"):
    predict.check_model(model, False, False, {"deepfashion_landmarks": "lm.txt"})


def test_a_folder_gives_json_overlays_and_the_fashionai_csv(fpm_workdir, tmp_path):
  root = tmp_path / "fashionai"
  sizes = {"Images/blouse/img_0001.jpg": (90, 120), "Images/skirt/img_0001.jpg": (80, 60),
           "Images/skirt/wide.PNG": (150, 70)}  # the same file name twice; an upper-case suffix
  for i, (name, (w, h)) in enumerate(sizes.items()):
    _photo(str(root / name), w, h, seed=i)
  (root / "Images/blouse/broken.jpg").write_bytes(b"not a jpeg")
  (root / "notes.txt").write_text("not an image")
  out, submission = tmp_path / "out", tmp_path / "split/Annotations/submission.csv"
  res = _cli(f"--workdir={fpm_workdir}", f"--images={root}", f"--out={out}", "--batch_size=2",
             f"--fashionai_csv={submission}", "--visible_threshold=0")
  assert res.returncode == predict.SOME_SKIPPED, res.stderr[-3000:]
  results = json.loads((out / "predictions.json").read_text())
  assert sorted(results) == sorted(sizes)  # keyed by the path under the folder given
  skipped = json.loads((out / "skipped.json").read_text())
  assert list(skipped) == ["Images/blouse/broken.jpg"]
  assert "not in a known image format" in skipped["Images/blouse/broken.jpg"]
  for name, (w, h) in sizes.items():
    result = results[name]
    assert result["image_size"] == [w, h] and len(result["keypoints"]) == 24
    assert all(len(v) == 4 for v in result["keypoints"].values())
    overlay = out / (os.path.splitext(name)[0] + ".png")
    assert _size(overlay) == (w, h)  # one picture per photo, at its size
  assert not (out / "notes.png").exists() and not (out / "Images/blouse/broken.png").exists()

  import csv

  with open(submission, newline="") as f:
    rows = list(csv.reader(f))
  assert rows[0] == ["image_id", "image_category", *schema.KEYPOINT_NAMES]
  assert [r[0] for r in rows[1:]] == list(results)
  for row in rows[1:]:
    result = results[row[0]]
    assert row[1] == row[0].split("/")[1]  # Images/<category>/...
    w, h = result["image_size"]
    for cell, point in zip(row[2:], schema.KEYPOINT_NAMES, strict=True):
      x, y, _, visible = result["keypoints"][point]
      expected = (f"{min(max(round(x), 0), w - 1)}_{min(max(round(y), 0), h - 1)}_1"
                  if visible else "-1_-1_-1")
      assert cell == expected
  # The package's reader of the challenge's CSV takes it as it is.
  table, annotated = fashionai_keypoints.read_split(tmp_path / "split")
  assert annotated and table.image_ids == list(results)


def test_boxes_and_the_deepfashion_lists_by_relative_path(attention_workdir, tmp_path):
  img = tmp_path / "deepfashion/img"
  sizes = {"A/img_00000001.jpg": (120, 100), "B/img_00000001.jpg": (64, 96)}
  for i, (name, (w, h)) in enumerate(sizes.items()):
    _photo(str(img / name), w, h, seed=i)
  _photo(str(img / "C/img_00000002.jpg"), 50, 50)  # no box row: skipped
  (img / "D/folder.jpg").mkdir(parents=True)  # a folder the glob matches: skipped
  boxes = tmp_path / "boxes.csv"
  boxes.write_text("file,x1,y1,x2,y2\nA/img_00000001.jpg,10,20,100,90\n"
                   "B/img_00000001.jpg,5,6,50,80\nZ/elsewhere.jpg,1,1,9,9\n")
  out, landmarks, categories = tmp_path / "out", tmp_path / "lm.txt", tmp_path / "cat.txt"
  res = _cli(f"--workdir={attention_workdir}", f"--images={img}/*/*", f"--out={out}",
             f"--boxes={boxes}", f"--deepfashion_landmarks={landmarks}",
             f"--deepfashion_categories={categories}", "--visible_threshold=0.003")
  assert res.returncode == predict.SOME_SKIPPED, res.stderr[-3000:]
  assert f"{boxes}:4: Z/elsewhere.jpg is not among the images" in res.stderr
  results = json.loads((out / "predictions.json").read_text())
  assert sorted(results) == sorted(sizes)  # the same file name in two folders: two entries
  skipped = json.loads((out / "skipped.json").read_text())
  assert "no row for C/img_00000002.jpg" in skipped["C/img_00000002.jpg"]
  assert "a folder, not an image" in skipped["D/folder.jpg"]
  assert results["A/img_00000001.jpg"]["crop"] == [10, 20, 100, 90]  # margin 0: the box itself
  assert results["B/img_00000001.jpg"]["crop"] == [5, 6, 50, 80]
  for name, size in sizes.items():
    assert _size(out / (os.path.splitext(name)[0] + ".png")) == size

  partition = {name: (i + 1, "test") for i, name in enumerate(results)}
  rows = deepfashion_lists.read_landmarks(landmarks, "partition", partition)
  for name, row in rows.items():
    assert row.clothes_type == 2 and row.variation_type == 0  # full body (published 3)
    for slot, point in enumerate(schema.LANDMARK_NAMES):
      x, y, _, visible = results[name]["landmarks"][point]
      np.testing.assert_array_equal(row.landmarks[slot], [round(x), round(y)])
      assert row.visibility[slot] == (schema.VISIBLE if visible else schema.OCCLUDED)
  names = workdir_files.load_dataset_spec(attention_workdir).category_names
  listed = formats.read_listing(categories, "image_name")
  assert [r.name for r in listed] == list(results)
  for row in listed:
    (label,) = formats.to_ints(row.tokens[1:], categories, row.line, "category_label")
    assert names[label - 1] == results[row.name]["category"][0][0]


def test_command_line_errors_are_one_paragraph(fpm_workdir, tmp_path):
  _photo(str(tmp_path / "photos/a.jpg"), 40, 30)
  nothing = _cli(f"--workdir={fpm_workdir}", f"--images={tmp_path}/photos/a.jpg,"
                 f"{tmp_path}/missing/*.jpg", f"--out={tmp_path}/out")
  assert nothing.returncode == 2
  assert f"error: --images: '{tmp_path}/missing/*.jpg' matches no file" in nothing.stderr
  assert "USAGE" not in nothing.stderr and "flags:" not in nothing.stderr  # not the help text
  (tmp_path / "empty").mkdir()
  empty = _cli(f"--workdir={fpm_workdir}", f"--images={tmp_path}/empty", f"--out={tmp_path}/o")
  assert empty.returncode == 2 and "the folder holds no image" in empty.stderr
  boxes = tmp_path / "boxes.csv"
  boxes.write_text("a.jpg,1,1,20,20\n")
  refused = _cli(f"--workdir={fpm_workdir}", f"--images={tmp_path}/photos",
                 f"--out={tmp_path}/out", f"--boxes={boxes}")
  assert refused.returncode == 2 and "boxes would be ignored" in refused.stderr
  untrained = tmp_path / "untrained"
  shutil.copytree(fpm_workdir, untrained, ignore=shutil.ignore_patterns("checkpoints", "best"))
  half_export = tmp_path / "export"
  half_export.mkdir()
  (half_export / "model.json").write_text("{}")
  for workdir, message in ((untrained, "no checkpoint in"), (half_export, "export again")):
    res = _cli(f"--workdir={workdir}", f"--images={tmp_path}/photos", f"--out={tmp_path}/out")
    assert res.returncode == 1 and message in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and res.stderr.count("error:") == 1


def test_a_segmented_model_needs_masks_found_by_relative_path(tmp_path):
  sister = types.SimpleNamespace(preprocess=inference.Preprocess((32, 32), segmented="white"),
                                 system="sister")
  with pytest.raises(predict.CommandLineError, match="give --masks=DIR"):
    predict.check_model(sister, boxes=False, masks=False, writer_flags={})
  plain = types.SimpleNamespace(preprocess=inference.Preprocess((32, 32), crop="bbox"),
                                system="landmark_attention")
  with pytest.raises(predict.CommandLineError, match="--masks: .* reads no segmented image"):
    predict.check_model(plain, boxes=True, masks=True, writer_flags={})

  calls = []

  def fake_predict(images, boxes=None, masks=None, **options):
    calls.append(masks)
    return [{"image_size": (im.shape[1], im.shape[0]), "crop": (0, 0, 1, 1),
             "category": [("tee", 0.9)]} for im in images]

  sister.predict = fake_predict
  names = ["a/img_1.jpg", "b/img_1.jpg", "c/img_1.jpg"]
  for i, name in enumerate(names):
    _photo(str(tmp_path / "photos" / name), 20 + i, 10)
  masks = tmp_path / "masks"
  person = np.zeros((10, 20), np.uint8)
  person[2:8, 5:15] = 200
  os.makedirs(masks / "a")
  Image.fromarray(person).save(masks / "a/img_1.png")
  os.makedirs(masks / "c")
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(masks / "c/img_1.png")  # another size
  inputs = [(str(tmp_path / "photos" / n), n) for n in names]
  results, skipped = predict.run(sister, inputs, str(tmp_path / "out"), None, str(masks))
  assert list(results) == ["a/img_1.jpg"] and results["a/img_1.jpg"]["category"] == [["tee", 0.9]]
  assert "no mask" in skipped["b/img_1.jpg"] and "is 5x5 but the image is 22x10" in skipped[
      "c/img_1.jpg"]
  (given,) = calls[0]
  np.testing.assert_array_equal(given, person > 0)
  assert _size(tmp_path / "out/a/img_1.png") == (20, 10)


def test_images_by_folder_or_globs(tmp_path):
  for name in ("x/a.jpg", "x/a.png", "x/sub/B.JPEG", "x/sub/c.webp", "y/d.bmp"):
    _photo(str(tmp_path / name), 8, 8)
  (tmp_path / "x/readme.txt").write_text("")
  _photo(str(tmp_path / "x/out/old.png"), 8, 8)  # an earlier run's overlay: never an input
  paths, root = predict.find_images(str(tmp_path / "x"), str(tmp_path / "x/out"))
  names = [predict.relative_name(p, root) for p in paths]
  assert root == str(tmp_path / "x") and names == ["a.jpg", "a.png", "sub/B.JPEG", "sub/c.webp"]
  assert predict.overlay_names(names) == {"a.jpg": "a.jpg.png", "a.png": "a.png.png",
                                          "sub/B.JPEG": "sub/B.png", "sub/c.webp": "sub/c.png"}
  paths, root = predict.find_images(f"{tmp_path}/x/sub/*, {tmp_path}/y/*.bmp,{tmp_path}/y/*",
                                    str(tmp_path / "out"))
  assert root == str(tmp_path)  # the common folder of the matches
  assert [predict.relative_name(p, root) for p in paths] == ["x/sub/B.JPEG", "x/sub/c.webp",
                                                             "y/d.bmp"]


def test_box_rows_are_checked(tmp_path, capsys):
  path = tmp_path / "boxes.csv"
  path.write_text("name,left,top,right,bottom\n./a/x.jpg,1,2,30,40\n\nb\\y.jpg,0,0,5,5\n")
  assert predict.read_box_rows(str(path)) == {"a/x.jpg": (2, [1, 2, 30, 40]),
                                              "b/y.jpg": (4, [0, 0, 5, 5])}
  assert "boxes.csv:1: header name,left,top,right,bottom taken as file,x1,y1,x2,y2" in (
      capsys.readouterr().err)
  path.write_text("file,x1,y1,x2,y2\na.jpg,1,2,30,40\nb.jpg,1,2,x,40\n")
  with pytest.raises(ValueError, match=r"boxes.csv:3: non-numeric box .* expected the columns "
                     "file,x1,y1,x2,y2"):
    predict.read_boxes(str(path))
  path.write_text("a.jpg,1,2,30\n")  # (a box with x2 <= x1: tests/test_reliability.py)
  with pytest.raises(ValueError, match=r"boxes.csv:1: expected file,x1,y1,x2,y2, got 4"):
    predict.read_boxes(str(path))


def test_writers_round_trip_through_the_package_readers(tmp_path):
  """Hand-made results with visible and hidden points, one outside the photo."""
  rng = np.random.default_rng(0)
  results = {}
  for i, name in enumerate(["Images/dress/a.jpg", "Images/skirt/a.jpg"]):
    visible = rng.random(24) < 0.5
    points = rng.uniform(-5, 70, (24, 2))
    results[name] = {"image_size": [60, 50], "category": [["tee", 0.7], ["dress", 0.2]][i:],
                     "keypoints": {n: [*points[k], 0.5, bool(visible[k])]
                                   for k, n in enumerate(schema.KEYPOINT_NAMES)},
                     "landmarks": {n: [*points[k], 0.5, bool(visible[k])]
                                   for k, n in enumerate(schema.LANDMARK_NAMES)}}
  split = tmp_path / "split"
  split.mkdir()
  (split / "submission.csv").write_text(prediction_lists.fashionai_csv(
      results, {n: n.split("/")[1] for n in results}))
  table, _ = fashionai_keypoints.read_split(split)
  for i, name in enumerate(results):
    for k, point in enumerate(schema.KEYPOINT_NAMES):
      x, y, _, visible = results[name]["keypoints"][point]
      code = table.fields["keypoints_visibility"][i][k]
      assert code == (schema.VISIBLE if visible else schema.ABSENT)
      if visible:  # rounded and kept inside the 60x50 photo
        np.testing.assert_array_equal(table.fields["keypoints"][i][k],
                                      [min(max(round(x), 0), 59), min(max(round(y), 0), 49)])
  assert [schema.FASHIONAI_CATEGORIES[c] for c in table.fields["category"]] == ["dress", "skirt"]
  (tmp_path / "lm.txt").write_text(prediction_lists.deepfashion_landmarks(results))
  partition = {name: (i + 1, "val") for i, name in enumerate(results)}
  rows = deepfashion_lists.read_landmarks(tmp_path / "lm.txt", "partition", partition)
  visibility = np.stack([rows[n].visibility for n in results])
  expected = [[schema.VISIBLE if results[n]["landmarks"][p][3] else schema.OCCLUDED
               for p in schema.LANDMARK_NAMES] for n in results]
  np.testing.assert_array_equal(visibility, expected)
  text = prediction_lists.deepfashion_categories(results, ("shorts", "tee", "dress"))
  assert text.splitlines() == ["2", "image_name category_label", "Images/dress/a.jpg 2",
                               "Images/skirt/a.jpg 3"]


def test_an_overlay_is_the_photo_with_the_prediction_drawn():
  photo = np.full((100, 80, 3), 90, np.uint8)
  result = {"image_size": (80, 100), "crop": (20.0, 30.0, 59.0, 89.0),
            "boundary_map": np.ones((7, 7), np.float32),
            "landmarks": {"left_collar": (5.0, 95.0, 0.9, True),
                          "right_collar": (75.0, 5.0, 0.1, False)}}
  picture = visualize.overlay_on_original(photo, result)
  assert picture.shape == photo.shape and picture.dtype == np.uint8
  changed = np.any(picture != photo, axis=-1)
  assert changed[30:90, 20:60].all()  # the boundary map over the crop box
  assert changed[95, 5] and not changed[5, 75]  # the visible point only
  assert not changed[10:25, 30:60].any()  # elsewhere the photo itself
  boxed = visualize.overlay_on_original(photo, {**result, "category": [("tee", 0.8)]},
                                        show_crop=True)
  assert tuple(boxed[60, 20]) == visualize.CROP_COLOUR and np.any(boxed[:12] != photo[:12])


def test_a_full_disk_while_writing_overlays_is_one_message_and_no_partial_file(fpm_workdir,
                                                                               tmp_path,
                                                                               monkeypatch):
  import errno

  from fashion_jax import visualize

  photos = tmp_path / "photos"
  photos.mkdir()
  for i in range(3):
    Image.fromarray(np.full((40, 30, 3), 70 * i, np.uint8)).save(photos / f"p{i}.jpg")
  model = fashion_jax.load(fpm_workdir)
  real_replace, calls = visualize.os.replace, []

  def replace(src, dst):  # the disk fills up at the second overlay
    calls.append(dst)
    if len(calls) == 2:
      raise OSError(errno.ENOSPC, "No space left on device")
    return real_replace(src, dst)

  monkeypatch.setattr(visualize.os, "replace", replace)
  out = tmp_path / "out"
  inputs = [(str(photos / f"p{i}.jpg"), f"p{i}.jpg") for i in range(3)]
  with pytest.raises(OSError, match=r"could not write .*p1.png: No space left on device; the 1 "
                     r"overlay\(s\) written before it are kept"):
    predict.run(model, inputs, str(out), batch_size=1)
  assert sorted(os.listdir(out)) == ["p0.png"]  # no half-written p1.png, no temporary file
