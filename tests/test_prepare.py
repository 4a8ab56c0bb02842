"""The preparation command: validate first, skip and count bad images, summary, read back."""

import numpy as np
import pytest
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


def test_not_prepared_names_the_data_dir_to_pass_and_the_config_found_there(tmp_path):
  """The suggested --data_dir is the root training reads (not the versioned folder inside it),
  and a prepared config other than the one asked for is named with the flag that reads it."""
  (tmp_path / "deepfashion_attributes" / "coarse_41attr" / "1.0.0").mkdir(parents=True)
  builder = datasets.get_builder("deepfashion_attributes", str(tmp_path), config="coarse")
  with pytest.raises(FileNotFoundError) as refused:
    datasets.ensure_prepared(builder, str(tmp_path))
  message = str(refused.value)
  assert f"--data_dir={tmp_path} --config=coarse\n" in message
  assert "Prepared there: coarse_41attr" in message
  assert "--config.data.builder_config=coarse_41attr" in message


def test_the_synthetic_set_says_what_it_will_generate_before_it_starts(tmp_path, caplog):
  builder = datasets.get_builder("fashion_synth", str(tmp_path), config=dict(
      image_size=512, num_train=20000, num_validation=8107, num_test=3493))
  estimate = builder.generation_estimate()
  # 31,600 images of 512x512 (the pose-machine paper config): 2.4 GB, ~25 minutes measured.
  assert "31,600 images of 512x512" in estimate and "about 2.4 GB" in estimate
  assert "roughly 25 minutes" in estimate and ":runlocal" in estimate
  small = datasets.get_builder("fashion_synth", str(tmp_path), config=dict(
      image_size=32, num_train=4, num_validation=2, num_test=2, views_per_item=1))
  datasets.ensure_prepared(small, str(tmp_path))
  assert "generating the synthetic dataset s32_n4-2-2_v1_seed0: 8 images" in caplog.text
  assert datasets.prepared(small)


def test_two_processes_generating_one_synthetic_set_take_turns(tmp_path):
  import subprocess
  import sys

  code = ("import sys\nfrom fashion_jax.data import datasets\n"
          "make = lambda: datasets.get_builder('fashion_synth', sys.argv[1], config=dict("
          "image_size=32, num_train=24, num_validation=4, num_test=4, views_per_item=1))\n"
          "datasets.ensure_prepared(make(), sys.argv[1])\n"
          "print(len(make().as_data_source()['train']))\n")
  runs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for _ in range(2)]
  outs = [r.communicate(timeout=300) for r in runs]
  assert [r.returncode for r in runs] == [0, 0], [o[1][-2000:] for o in outs]
  assert [o[0].split()[-1] for o in outs] == ["24", "24"]
  assert sum("generating the synthetic dataset" in o[1] for o in outs) == 1  # one made it


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),
                                   PermissionError(13, "Permission denied", "/data/x")])
def test_a_failed_write_is_one_error_line_and_the_old_data_is_kept(tmp_path, capsys,
                                                                    monkeypatch, error):
  """A full disk or a read-only folder during `--overwrite`: `error:` and one paragraph, the
  earlier data still readable, the temporary folder removed. (Simulated: as root here, a
  read-only folder would still be writable.)"""
  import errno

  manual = write_fld(tmp_path / "manual")
  data_dir = tmp_path / "tfds"
  argv = ["--dataset=deepfashion_landmarks", f"--manual_dir={manual}", f"--data_dir={data_dir}"]
  assert prepare.main(argv) == 0
  capsys.readouterr()
  count = lambda: len(datasets.get_builder("deepfashion_landmarks", data_dir=data_dir)
                      .as_data_source()["train"])
  before = count()
  builder_cls = datasets.builder_class("deepfashion_landmarks")

  def failing(self, *args, **kwargs):  # tfds writes into incomplete.* first, then fails
    (self.data_path.parent / "incomplete.ABC123").mkdir()
    raise error

  monkeypatch.setattr(builder_cls, "download_and_prepare", failing)
  assert prepare.main(argv + ["--overwrite"]) == 1
  err = capsys.readouterr().err
  last = err.strip().replace("\r", "\n").splitlines()[-1]  # after the checking bars
  reason = "No space left on device" if error.errno == errno.ENOSPC else "Permission denied"
  assert last.startswith(f"error: writing deepfashion_landmarks to {data_dir}") and reason in last
  assert "the data prepared there before is kept; 1 incomplete folder(s) removed" in last
  assert "Traceback" not in err and err.count("error:") == 1
  assert count() == before > 0
  builder = datasets.get_builder("deepfashion_landmarks", data_dir=data_dir)
  assert not list(builder.data_path.parent.glob("incomplete.*"))
