"""FashionAI keypoints: the x_y_v cells, -1_-1_-1, test CSVs, split folders, bad input."""

import pytest
from fixtures.real import write_images, write_text
from numpy.testing import assert_array_equal

from fashion_jax.data import formats, schema
from fashion_jax.data.fashionai_keypoints import fashionai_keypoints as fai

VIS, OCC, ABS = schema.VISIBLE, schema.OCCLUDED, schema.ABSENT
HEADER = "image_id,image_category," + ",".join(schema.KEYPOINT_NAMES)
BLOUSE = ("Images/blouse/0a1b2c.jpg,blouse," + ",".join(
    ["101_52_1", "130_50_0", "115_70_1", "90_60_1", "140_61_1", "88_120_1", "142_119_0"]
    + ["-1_-1_-1"] * 2 + ["60_200_1", "55_210_1", "170_200_0", "175_212_1", "92_230_1",
                          "138_231_1"] + ["-1_-1_-1"] * 9))
SKIRT = ("Images/skirt/ffee00.jpg,skirt," + ",".join(
    ["-1_-1_-1"] * 15 + ["20_5_1", "28_6_1", "15_30_0", "31_29_1"] + ["-1_-1_-1"] * 5))


def write_fashionai(root):
  write_text(root / "train" / "Annotations" / "train.csv", f"{HEADER}\n{BLOUSE}\n{SKIRT}\n")
  write_images(root / "train", ["Images/blouse/0a1b2c.jpg", "Images/skirt/ffee00.jpg"])
  write_text(root / "test" / "test.csv", "image_id,image_category\nImages/dress/123abc.jpg,dress\n")
  write_images(root / "test", ["Images/dress/123abc.jpg"])
  return root


def test_cells_categories_and_test_csv(tmp_path):
  plan = fai.read_fashionai(write_fashionai(tmp_path))
  assert list(plan.splits) == ["train", "test"]
  blouse, skirt = (plan.splits["train"].example(i, 0) for i in range(2))
  assert plan.splits["train"].image_paths[1] == tmp_path / "train/Images/skirt/ffee00.jpg"
  assert (blouse["fashionai_category"], skirt["fashionai_category"]) == (0, 3)
  assert blouse["category"] == 0 and plan.spec.category_names[3] == "skirt"
  # v: 1 visible, 0 occluded (coordinates given), -1 absent (-1_-1_-1, stored as 0, 0).
  assert_array_equal(blouse["keypoints_visibility"][:9],
                     [VIS, OCC, VIS, VIS, VIS, VIS, OCC, ABS, ABS])
  assert_array_equal(blouse["keypoints"][[0, 1, 7]], [[101, 52], [130, 50], [0, 0]])
  assert_array_equal(skirt["keypoints_visibility"][15:19], [VIS, VIS, OCC, VIS])
  assert (skirt["keypoints_visibility"][:15] == ABS).all()
  assert_array_equal(skirt["keypoints"][17], [15, 30])
  test = plan.splits["test"].example(0, 0)
  assert test["fashionai_category"] == 2 and (test["keypoints_visibility"] == ABS).all()
  assert any("'test' has no keypoint columns" in note for note in plan.notes)
  assert not blouse["has_bbox"] and (blouse["landmarks_visibility"] == ABS).all()


@pytest.mark.parametrize("old,new,message", [
    ("101_52_1", "101_52_2", r"train.csv:2: neckline_left visibility: 2"),
    ("101_52_1", "101_52", r"train.csv:2: neckline_left: '101_52' is not x_y_v"),
    ("101_52_1", "101_5x_1", r"train.csv:2: neckline_left: '5x' is not an integer"),
    ("Images/skirt/ffee00.jpg,skirt", "Images/skirt/ffee00.jpg,kilt",
     r"train.csv:3: image_category 'kilt'"),
    ("20_5_1", "20_5_-1", r"train.csv:3: waistband_left: '20_5_-1' is absent but has x, y"),
    (",31_29_1", "", r"train.csv:3: expected 26 columns, found 25"),
    ("20_5_1", "-30_20_1", r"train.csv:3: waistband_left: '-30_20_1' is visible at a negative"),
    ("neckline_right", "neckline_rite", r"train.csv:1: expected the header"),
    ("Images/skirt/ffee00.jpg,skirt", "Images/skirt/ffee00.jpg,blouse",
     r"train.csv:3: Images/skirt/ffee00.jpg lies in the skirt/ folder but its image_category "
     r"is 'blouse'"),
])
def test_bad_cells_and_rows(tmp_path, old, new, message):
  write_fashionai(tmp_path)
  path = tmp_path / "train" / "Annotations" / "train.csv"
  path.write_text(path.read_text().replace(old, new, 1))
  with pytest.raises(formats.AnnotationError, match=message):
    fai.read_fashionai(tmp_path)


def test_unknown_split_folder_and_missing_csv(tmp_path):
  write_fashionai(tmp_path)
  (tmp_path / "warmup").mkdir()
  with pytest.raises(formats.AnnotationError, match=r"warmup: unknown split name 'warmup'"):
    fai.read_fashionai(tmp_path)
  (tmp_path / "warmup").rmdir()
  (tmp_path / "test" / "test.csv").unlink()
  with pytest.raises(FileNotFoundError, match="no annotation CSV"):
    fai.read_fashionai(tmp_path)


def test_a_split_csv_without_rows_or_with_a_second_csv_is_refused(tmp_path):
  write_fashionai(tmp_path)
  write_text(tmp_path / "train" / "extra.csv", f"{HEADER}\n")
  with pytest.raises(formats.AnnotationError,
                     match=r"several CSV files \(Annotations/train.csv, extra.csv\)"):
    fai.read_fashionai(tmp_path)
  (tmp_path / "train" / "extra.csv").unlink()
  write_text(tmp_path / "test" / "test.csv", "image_id,image_category\n")
  with pytest.raises(formats.AnnotationError, match=r"test.csv:1: a header and no rows"):
    fai.read_fashionai(tmp_path)
