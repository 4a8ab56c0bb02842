"""The preparation command: validate first, skip and count bad images, summary, read back."""

import numpy as np
from fixtures.real import decoded, truncate, write_jpeg
from PIL import Image
from test_deepfashion_landmarks import write_fld

from fashion_jax.data import datasets, prepare, schema


def test_prepare_skips_and_counts_bad_images_then_reads_back(tmp_path, capsys):
  manual = write_fld(tmp_path / "manual")
  truncate(manual / "img" / "img_00000002.jpg")
  Image.new("CMYK", (320, 300), (0, 255, 255, 0)).save(manual / "img" / "img_00000003.jpg")
  data_dir = tmp_path / "tfds"
  argv = ["--dataset=deepfashion_landmarks", f"--manual_dir={manual}", f"--data_dir={data_dir}"]
  assert prepare.main(argv) == 0
  out = capsys.readouterr().out
  assert "train: 1 examples" in out and "test: 1 examples" in out
  assert "skipped: 1\n    1 x truncated image: the data ends early: train/img/img_00000002.jpg" in (
      out)
  assert "re-encoded as RGB JPEG: 1" in out and "variation_type counts" in out

  builder = datasets.get_builder("deepfashion_landmarks", data_dir=data_dir)
  assert datasets.dataset_spec(builder) == schema.DatasetSpec(labels=("landmarks", "bbox"))
  train, test = (builder.as_data_source()[s] for s in ("train", "test"))
  assert len(train) == 1 and len(test) == 1
  example = train[0]
  assert example["image_id"] == b"img/img_00000001.jpg"
  np.testing.assert_array_equal(example["image"], decoded(manual / "img" / "img_00000001.jpg"))
  np.testing.assert_array_equal(example["landmarks"][7], [177, 232])
  assert example["mask"].shape == (1, 1, 1) and not example["has_mask"]
  cmyk = test[0]["image"]  # re-encoded: RGB of the CMYK (0, 255, 255, 0) is red
  assert cmyk.shape == (300, 320, 3) and cmyk[..., 0].min() > 240 and cmyk[..., 1:].max() < 15

  again = prepare.prepare("deepfashion_landmarks", manual, data_dir)
  assert again.already_prepared and again.examples == {"train": 1, "test": 1}
  write_jpeg(manual / "img" / "img_00000002.jpg")  # repaired: --overwrite prepares again
  again = prepare.prepare("deepfashion_landmarks", manual, data_dir, overwrite=True)
  assert not again.already_prepared and again.examples == {"train": 2, "test": 1}
  assert len(datasets.get_builder("deepfashion_landmarks", data_dir=data_dir)
             .as_data_source()["train"]) == 2


def test_bad_input_stops_before_anything_is_written(tmp_path, capsys):
  manual = write_fld(tmp_path / "manual")
  data_dir = tmp_path / "tfds"
  argv = ["--dataset=deepfashion_landmarks", f"--manual_dir={manual}", f"--data_dir={data_dir}"]
  (manual / "img" / "img_00000003.jpg").unlink()
  assert prepare.main(argv) == 1
  err = capsys.readouterr().err
  assert "1 image(s) of split 'test'" in err and "img_00000003.jpg" in err
  assert "nothing was written" in err
  path = manual / "Anno" / "list_bbox.txt"
  path.write_text(path.read_text().replace("051 015 180 290", "051 015 180"))
  assert prepare.main(argv) == 1
  assert "list_bbox.txt:4: expected 5 columns, found 4" in capsys.readouterr().err
  assert not (data_dir / "deepfashion_landmarks").exists()


def test_boxes_points_and_paths_that_cannot_be_right_are_refused(tmp_path, capsys):
  """Values no image can have stop preparation with the file and line, or the record, named."""
  manual = write_fld(tmp_path / "manual")
  data_dir = tmp_path / "tfds"
  argv = ["--dataset=deepfashion_landmarks", f"--manual_dir={manual}", f"--data_dir={data_dir}"]
  bbox, landmarks = manual / "Anno" / "list_bbox.txt", manual / "Anno" / "list_landmarks.txt"
  original_bbox, original_landmarks = bbox.read_text(), landmarks.read_text()
  for before, after, message in (
      ("051 015 180 290", "180 015 051 290", "list_bbox.txt:4: bbox: [180.0, 15.0, 51.0, 290.0] "
       "is not a box in pixels"),
      ("051 015 180 290", "-51 015 180 290", "list_bbox.txt:4: bbox: [-51.0"),
      ("051 015 180 290", "051 015 980 290", "train img/img_00000002.jpg: bbox [51.0, 15.0, "
       "980.0, 290.0] lies outside the 320x320 image")):
    bbox.write_text(original_bbox.replace(before, after))
    assert prepare.main(argv) == 1
    assert message in capsys.readouterr().err
  bbox.write_text(original_bbox)
  landmarks.write_text(original_landmarks.replace("177 232", "3177 232", 1))
  assert prepare.main(argv) == 1
  assert "train img/img_00000001.jpg: 1 landmarks far outside the 320x320 image (slot 7 at " \
         "[3177.0, 232.0])" in capsys.readouterr().err
  landmarks.write_text(original_landmarks)
  for path in (bbox, landmarks, manual / "Eval" / "list_eval_partition.txt"):
    path.write_text(path.read_text().replace("img/img_00000003.jpg", "img/../../outside.jpg"))
  write_jpeg(tmp_path / "outside.jpg")
  assert prepare.main(argv) == 1
  assert "image id 'img/../../outside.jpg' leads outside" in capsys.readouterr().err
  assert not (data_dir / "deepfashion_landmarks").exists()
