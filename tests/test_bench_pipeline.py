"""The pipeline benchmark at toy size: it writes and prepares a real-format set, times the
floor and one worker of the training pipeline, and reports their ratio."""

import json

from fashion_jax.tools import bench_pipeline


def test_it_measures_floor_and_pipeline_on_the_same_prepared_files(tmp_path, capsys):
  out = tmp_path / "report"
  assert bench_pipeline.main(["--systems=landmark_attention", "--n=80", "--image_size=64",
                              "--batches=1", f"--work={tmp_path / 'data'}", f"--out={out}"]) == 0
  (row,) = json.loads((out.parent / "report.json").read_text())["rows"]
  assert row["system"] == "landmark_attention" and row["input"] == [224, 224]
  assert row["floor_images_per_s"] > 0 and row["pipeline_images_per_s"] > 0
  assert row["ratio"] == row["pipeline_images_per_s"] / row["floor_images_per_s"]
  table = (out.parent / "report.md").read_text()
  assert "| landmark_attention | deepfashion_attributes | 224x224 | 1 | " in table
  assert (tmp_path / "data" / "deepfashion_attributes" / "tfds").is_dir()  # prepared, kept


def test_an_unknown_system_is_refused(capsys):
  assert bench_pipeline.main(["--systems=nope"]) == 2
  assert "unknown ['nope']" in capsys.readouterr().err
