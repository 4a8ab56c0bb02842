"""FLD: rows with variation_type, zero-triple padding, and bad input."""

import pytest
from fixtures.real import write_images, write_text
from numpy.testing import assert_array_equal

from fashion_jax.data import formats, schema
from fashion_jax.data.deepfashion_landmarks import deepfashion_landmarks as fld

VIS, OCC, TRU, ABS = schema.VISIBLE, schema.OCCLUDED, schema.TRUNCATED, schema.ABSENT
IMAGES = ("img/img_00000001.jpg", "img/img_00000002.jpg", "img/img_00000003.jpg")
HEADER = "image_name  clothes_type  variation_type  " + "  ".join(
    f"landmark_visibility_{i}  landmark_location_x_{i}  landmark_location_y_{i}"
    for i in range(1, 9))
# Upper (6 points) and lower (4 points) rows are padded with zero triples to 8.
LANDMARKS = f"""\
3
{HEADER}
img/img_00000001.jpg                     1  2  0 146 102  0 173 095  1 094 242  0 205 255  2 136 229  0 177 232  0 000 000  0 000 000
img/img_00000002.jpg                     2  1  0 100 050  0 150 051  1 090 200  0 160 210  0 000 000  0 000 000  0 000 000  0 000 000
img/img_00000003.jpg                     3  5  0 010 011  0 012 013  0 014 015  1 016 017  2 018 019  0 020 021  0 022 023  0 024 025
"""  # noqa: E501 (published row width)
BBOX = """\
3
image_name  x_1  y_1  x_2  y_2
img/img_00000001.jpg                     072 079 232 273
img/img_00000002.jpg                     051 015 180 290
img/img_00000003.jpg                     004 010 031 030
"""
PARTITION = """\
3
image_name  evaluation_status
img/img_00000001.jpg                     train
img/img_00000002.jpg                     train
img/img_00000003.jpg                     test
"""


def write_fld(root, landmarks=LANDMARKS):
  write_text(root / "Anno" / "list_landmarks.txt", landmarks)
  write_text(root / "Anno" / "list_bbox.txt", BBOX)
  write_text(root / "Eval" / "list_eval_partition.txt", PARTITION)
  write_images(root, IMAGES)
  return root


def test_padded_rows_with_variation_type(tmp_path):
  plan = fld.read_fld(write_fld(tmp_path))
  assert {k: len(v) for k, v in plan.splits.items()} == {"train": 2, "test": 1}
  upper, lower = (plan.splits["train"].example(i, 0) for i in range(2))
  full = plan.splits["test"].example(0, 0)
  # The zero triples are padding, not visible points at (0, 0).
  assert_array_equal(upper["landmarks_visibility"], [VIS, VIS, OCC, VIS, ABS, ABS, TRU, VIS])
  assert_array_equal(upper["landmarks"][[2, 7]], [[94, 242], [177, 232]])
  assert_array_equal(lower["landmarks_visibility"], [ABS, ABS, ABS, ABS, VIS, VIS, OCC, VIS])
  assert_array_equal(lower["landmarks"][4], [100, 50])
  assert_array_equal(full["landmarks_visibility"], [VIS, VIS, VIS, OCC, TRU, VIS, VIS, VIS])
  assert (upper["clothes_type"], lower["clothes_type"], full["clothes_type"]) == (0, 1, 2)
  assert_array_equal(full["bbox"], [4, 10, 31, 30])
  assert upper["category"] == -1 and upper["attributes"].shape == (0,)
  assert "variation_type counts (not stored: the schema has no field for it): 1: 1, 2: 1, 5: 1" in (
      plan.notes)


def test_rows_without_padding_or_variation_read_the_same(tmp_path):
  padded = fld.read_fld(write_fld(tmp_path / "a"))
  unpadded = LANDMARKS.replace("  0 000 000", "")
  plain = unpadded.replace("  1  2  0", "  1  0").replace("  2  1  0", "  2  0").replace(
      "  3  5  0", "  3  0")
  for text in (unpadded, plain):
    other = fld.read_fld(write_fld(tmp_path / str(len(text)), landmarks=text))
    for split, table in padded.splits.items():
      for field in ("landmarks", "landmarks_visibility", "clothes_type"):
        assert_array_equal(table.fields[field], other.splits[split].fields[field])


@pytest.mark.parametrize("old,new,message", [
    ("0 000 000  0 000 000\nimg/img_00000002", "0 000 000  0 001 000\nimg/img_00000002",
     r"list_landmarks.txt:3: landmark 8 pads a clothes_type 1 row and must be 0 0 0"),
    ("  1  2  0 146", "  4  2  0 146", r"list_landmarks.txt:3: clothes_type: 4"),
    ("  1  2  0 146", "  1  9  0 146", r"list_landmarks.txt:3: variation_type: 9"),
    ("  3  5  0 010 011", "  3  5  0 010 O11", r"list_landmarks.txt:5: .*'O11' is not a number"),
])
def test_bad_landmark_rows(tmp_path, old, new, message):
  write_fld(tmp_path, landmarks=LANDMARKS.replace(old, new, 1))
  with pytest.raises(formats.AnnotationError, match=message):
    fld.read_fld(tmp_path)


def test_missing_files(tmp_path):
  write_fld(tmp_path)
  (tmp_path / "Eval" / "list_eval_partition.txt").unlink()
  with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
    fld.read_fld(tmp_path)
