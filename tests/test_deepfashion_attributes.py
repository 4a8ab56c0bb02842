"""DeepFashion Category & Attribute: published quirks and bad input, on byte-exact fixtures."""

import numpy as np
import pytest
from fixtures.real import write_images, write_text
from numpy.testing import assert_array_equal

from fashion_jax.data import formats, schema
from fashion_jax.data.deepfashion_attributes import deepfashion_attributes as dfa

VIS, OCC, TRU, ABS = schema.VISIBLE, schema.OCCLUDED, schema.TRUNCATED, schema.ABSENT

# The 50 published category names (20 upper, 16 lower, 14 full body); four full-body ones were
# merged into Dress and carry no images.
CATEGORIES = (
    "Anorak Blazer Blouse Bomber Button-Down Cardigan Flannel Halter Henley Hoodie Jacket Jersey "
    "Parka Peacoat Poncho Sweater Tank Tee Top Turtleneck Capris Chinos Culottes Cutoffs Gauchos "
    "Jeans Jeggings Jodhpurs Joggers Leggings Sarong Shorts Skirt Sweatpants Sweatshorts Trunks "
    "Caftan Cape Coat Coverup Dress Jumpsuit Kaftan Kimono Nightdress Onesie Robe Romper "
    "Shirtdress Sundress").split()
CATEGORY_CLOTH = "50\ncategory_name  category_type\n" + "".join(
    f"{name:<29}{1 if i < 20 else 2 if i < 36 else 3}\n" for i, name in enumerate(CATEGORIES))

IMG1 = "img/Sheer_Pleated-Front_Blouse/img_00000001.jpg"
IMG2 = "img/Classic_Denim_Shorts/img_00000002.jpg"
IMG3 = "img/Floral_Maxi_Sundress/img_00000003.jpg"
IMAGES = (IMG1, IMG2, IMG3)

ATTR_CLOTH = """\
5
attribute_name  attribute_type
a-line                       3
abstract print               1
cotton                       2
crew neck                    4
boho chic                    5
"""
CATEGORY_IMG = f"""\
3
image_name  category_label
{IMG1:<64}3
{IMG2:<64}32
{IMG3:<64}50
"""
ATTR_IMG = f"""\
3
image_name  attribute_labels
{IMG1:<64}-1  1 -1  0 -1
{IMG2:<64} 0  0 -1 -1  1
{IMG3:<64} 1 -1  1  1  0
"""
BBOX = f"""\
3
image_name  x_1  y_1  x_2  y_2
{IMG1:<64}072 079 232 273
{IMG2:<64}051 015 180 290
{IMG3:<64}004 010 031 030
"""
# The header lists variation_type; the rows do not have it (as in the real file).
LANDMARK_HEADER = ("image_name  clothes_type  variation_type  " + "  ".join(
    f"landmark_visibility_{i}  landmark_location_x_{i}  landmark_location_y_{i}"
    for i in range(1, 9)))
LANDMARK_ROWS = (
    (IMG1, "1", "0 146 102  0 173 095  1 094 242  0 205 255  2 136 229  0 177 232"),
    (IMG2, "2", "0 100 050  0 150 051  1 090 200  0 160 210"),
    (IMG3, "3", "0 010 011  0 012 013  0 014 015  1 016 017  2 018 019  0 020 021  0 022 023"
                "  0 024 025"),
)
PARTITION = f"""\
3
image_name  evaluation_status
{IMG1:<64}train
{IMG2:<64}val
{IMG3:<64}test
"""


def landmarks_text(variation=None):
  rows = [f"{name:<64}{ctype}  " + (f"{variation}  " if variation else "") + cells
          for name, ctype, cells in LANDMARK_ROWS]
  return f"3\n{LANDMARK_HEADER}\n" + "\n".join(rows) + "\n"


def write_coarse(root, anno="Anno", images="img", landmarks=None):
  files = {"list_category_cloth.txt": CATEGORY_CLOTH, "list_attr_cloth.txt": ATTR_CLOTH,
           "list_category_img.txt": CATEGORY_IMG, "list_attr_img.txt": ATTR_IMG,
           "list_bbox.txt": BBOX, "list_landmarks.txt": landmarks or landmarks_text()}
  for name, text in files.items():
    write_text(root / anno / name, text)
  write_text(root / "Eval" / "list_eval_partition.txt", PARTITION)
  image_parent = root / images.removesuffix("img")
  write_images(image_parent, IMAGES)
  return root


def test_coarse_fields_spec_and_splits(tmp_path):
  plan = dfa.read_coarse(write_coarse(tmp_path), num_attributes=5)
  assert plan.spec.category_names == tuple(CATEGORIES)
  # Names with spaces are split from the right; types 1..5 -> the five groups.
  assert plan.spec.attribute_names == ("a-line", "abstract print", "cotton", "crew neck",
                                       "boho chic")
  assert plan.spec.attribute_groups == (2, 0, 1, 3, 4)
  assert plan.spec.attribute_group_names == ("texture", "fabric", "shape", "part", "style")
  assert list(plan.splits) == ["train", "val", "test"]
  upper, lower, full = (plan.splits[s].example(0, 5) for s in ("train", "val", "test"))
  assert plan.splits["test"].image_paths[0] == tmp_path / IMG3
  # 1-based category ids: 3 -> Blouse, 32 -> Shorts, 50 -> the 50th name.
  assert (upper["category"], lower["category"], full["category"]) == (2, 31, 49)
  assert CATEGORIES[full["category"]] == "Sundress"
  # 1 positive, -1 negative, 0 unknown -> 1, 0, -1.
  assert_array_equal(upper["attributes"], [0, 1, 0, -1, 0])
  assert_array_equal(lower["attributes"], [-1, -1, 0, 0, 1])
  assert_array_equal(upper["bbox"], [72, 79, 232, 273])
  assert upper["has_bbox"]
  # Upper-body points go to slots 0,1,2,3,6,7; lower to 4,5,6,7; 0/1/2 -> VISIBLE/OCCLUDED/TRUNC.
  assert upper["clothes_type"] == 0 and lower["clothes_type"] == 1 and full["clothes_type"] == 2
  assert_array_equal(upper["landmarks_visibility"], [VIS, VIS, OCC, VIS, ABS, ABS, TRU, VIS])
  assert_array_equal(upper["landmarks"][[0, 6, 7]], [[146, 102], [136, 229], [177, 232]])
  assert_array_equal(upper["landmarks"][4:6], 0)
  assert_array_equal(lower["landmarks_visibility"], [ABS, ABS, ABS, ABS, VIS, VIS, OCC, VIS])
  assert_array_equal(lower["landmarks"][4:], [[100, 50], [150, 51], [90, 200], [160, 210]])
  assert_array_equal(full["landmarks_visibility"], [VIS, VIS, VIS, OCC, TRU, VIS, VIS, VIS])
  assert_array_equal(full["landmarks"][:, 0], np.arange(10, 25, 2))
  # Fields DeepFashion lacks stay missing.
  assert upper["domain"] == -1 and upper["fashionai_category"] == -1
  assert (upper["keypoints_visibility"] == ABS).all() and (upper["dcsa_labels"] == -1).all()


@pytest.mark.parametrize("anno,images", [("Anno", "img"), ("Anno_coarse", "Img/img"),
                                         ("Anno_coarse", "img"), ("Anno", "Img/img")])
def test_both_release_layouts(tmp_path, anno, images):
  plan = dfa.read_coarse(write_coarse(tmp_path, anno=anno, images=images), num_attributes=5)
  path = plan.splits["train"].image_paths[0]
  assert path.is_file() and path.relative_to(tmp_path).as_posix() == f"{images}"[:-3] + IMG1


@pytest.mark.parametrize("variation", [1, 5])
def test_landmark_rows_with_variation_type_read_the_same(tmp_path, variation):
  plain = dfa.read_coarse(write_coarse(tmp_path / "a"), 5)
  varied = dfa.read_coarse(write_coarse(tmp_path / "b", landmarks=landmarks_text(variation)), 5)
  for split in plain.splits:
    for field in ("landmarks", "landmarks_visibility", "clothes_type"):
      assert_array_equal(plain.splits[split].fields[field],
                                    varied.splits[split].fields[field])


def test_published_attribute_count_is_the_default(tmp_path):
  write_coarse(tmp_path)
  names = [f"attribute {i:04d}" for i in range(1000)]
  write_text(tmp_path / "Anno" / "list_attr_cloth.txt", "1000\nattribute_name  attribute_type\n"
             + "".join(f"{n:<29}{1 + i % 5}\n" for i, n in enumerate(names)))
  values = " ".join(["-1"] * 999 + ["1"])
  write_text(tmp_path / "Anno" / "list_attr_img.txt", "3\nimage_name  attribute_labels\n"
             + "".join(f"{n}  {values}\n" for n in IMAGES))
  assert dfa.DeepfashionAttributes.config_for_manual_dir(tmp_path, None) == "coarse"
  plan = dfa.read_coarse(tmp_path, 1000)
  assert plan.spec.num_attributes == 1000 and plan.spec.attribute_names[1] == "attribute 0001"
  assert plan.splits["val"].fields["attributes"][0, -1] == 1
  with pytest.raises(formats.AnnotationError, match="coarse_1000attr|expects 5"):
    dfa.read_coarse(tmp_path, 5)


def test_other_attribute_counts_get_a_counted_config(tmp_path):
  write_coarse(tmp_path)
  assert dfa.DeepfashionAttributes.config_for_manual_dir(tmp_path, None) == "coarse_5attr"
  with pytest.raises(formats.AnnotationError, match=r"list_attr_cloth.txt: .*'coarse_5attr'"):
    dfa.read_coarse(tmp_path, 1000)


def _replace(path, old, new):
  path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize("file,old,new,message", [
    ("list_bbox.txt", "072 079 232 273", "072 079 232", r"list_bbox.txt:3: expected 5 columns"),
    ("list_bbox.txt", "072 079", "072 seven", r"list_bbox.txt:3: bbox: 'seven' is not a number"),
    ("list_attr_img.txt", "-1  1 -1  0 -1", "-1  1 -1  0  2",
     r"list_attr_img.txt:3: attribute value: 2 is not one of \(1, -1, 0\)"),
    ("list_attr_img.txt", "-1  1 -1  0 -1", "-1  1 -1  0 no",
     r"list_attr_img.txt:3: attribute_labels: 'no' is not an integer"),
    ("list_attr_img.txt", "-1  1 -1  0 -1", "-1  1 -1  0", r"list_attr_img.txt:3: expected 6"),
    ("list_category_img.txt", "{IMG3:<64}50", "{IMG3:<64}51", r"list_category_img.txt:5: .*51"),
    ("list_category_img.txt", "3\nimage_name", "4\nimage_name",
     r"list_category_img.txt:1: the count line says 4 rows but the file has 3"),
    ("list_category_img.txt", "3\nimage_name  category_label\n", "3\n",
     r"list_category_img.txt:2: expected the column-name line"),
    ("list_category_img.txt", "3\n", "three\n", r"list_category_img.txt:1: expected the count"),
    ("list_landmarks.txt", "  2 136 229", "  3 136 229",
     r"list_landmarks.txt:3: landmark visibility: 3"),
    ("list_landmarks.txt", "0 146 102", "0 146",
     r"list_landmarks.txt:3: expected 20 or 21 or 26 or 27 columns .* found 19"),
    ("list_attr_cloth.txt", "cotton                       2", "cotton                       6",
     r"list_attr_cloth.txt:5: type: 6"),
])
def test_bad_rows_name_file_and_line(tmp_path, file, old, new, message):
  write_coarse(tmp_path)
  _replace(tmp_path / "Anno" / file, old.format(IMG3=IMG3), new.format(IMG3=IMG3))
  with pytest.raises(formats.AnnotationError, match=message):
    dfa.read_coarse(tmp_path, 5)


def test_unknown_split_name(tmp_path):
  write_coarse(tmp_path)
  _replace(tmp_path / "Eval" / "list_eval_partition.txt", "val\n", "validation\n")
  with pytest.raises(formats.AnnotationError, match=r"partition.txt:4: unknown split"):
    dfa.read_coarse(tmp_path, 5)


def test_image_missing_from_one_file_or_listed_twice(tmp_path):
  write_coarse(tmp_path)
  bbox = tmp_path / "Anno" / "list_bbox.txt"
  lines = bbox.read_text().splitlines()
  bbox.write_text("\n".join(["2"] + lines[1:3] + lines[4:]) + "\n")
  with pytest.raises(formats.AnnotationError,
                     match=r"list_eval_partition.txt:4: img/Classic.* not listed in .*list_bbox"):
    dfa.read_coarse(tmp_path, 5)
  bbox.write_text("\n".join(["3"] + lines[1:3] + lines[2:3] + lines[4:]) + "\n")
  with pytest.raises(formats.AnnotationError, match=r"list_bbox.txt:4: .* listed twice"):
    dfa.read_coarse(tmp_path, 5)


def test_missing_annotation_file_and_mixed_landmark_layouts(tmp_path):
  write_coarse(tmp_path)
  (tmp_path / "Anno" / "list_landmarks.txt").unlink()
  with pytest.raises(FileNotFoundError, match="list_landmarks.txt"):
    dfa.read_coarse(tmp_path, 5)
  mixed = landmarks_text().replace(f"{IMG2:<64}2  ", f"{IMG2:<64}2  1  ")
  write_text(tmp_path / "Anno" / "list_landmarks.txt", mixed)
  with pytest.raises(formats.AnnotationError, match=r"list_landmarks.txt:4: .*variation_type"):
    dfa.read_coarse(tmp_path, 5)


# ---- Anno_fine: per-split files aligned line by line, no headers -----------------------------
FINE_ATTRIBUTES = (
    "floral graphic striped embroidered pleated solid lattice long_sleeve short_sleeve sleeveless "
    "maxi_length mini_length no_dress crew_neckline v_neckline square_neckline no_neckline denim "
    "chiffon cotton leather faux knit tight loose conventional").split()
FINE_GROUPS = [1] * 7 + [2] * 3 + [3] * 3 + [4] * 4 + [5] * 6 + [6] * 3


def write_fine(root):
  write_text(root / "Anno_fine" / "list_category_cloth.txt", CATEGORY_CLOTH)
  write_text(root / "Anno_fine" / "list_attr_cloth.txt", "26\nattribute_name  attribute_type\n"
             + "".join(f"{n:<29}{g}\n" for n, g in zip(FINE_ATTRIBUTES, FINE_GROUPS, strict=True)))
  one_hot = ["1 0 0 0 0 0 0 1 0 0 0 1 0 1 0 0 0 0 0 1 0 0 0 0 1 0",
             "0 0 0 0 0 1 0 0 0 1 0 0 1 0 0 0 1 1 0 0 0 0 0 1 0 0"]
  for split, name, cate, attrs in (("train", IMG1, 3, one_hot[0]), ("val", IMG2, 32, one_hot[1]),
                                   ("test", IMG3, 50, one_hot[0])):
    write_text(root / "Anno_fine" / f"{split}.txt", f"{name}\n")
    write_text(root / "Anno_fine" / f"{split}_attr.txt", f"{attrs}\n")
    write_text(root / "Anno_fine" / f"{split}_cate.txt", f"{cate}\n")
    write_text(root / "Anno_fine" / f"{split}_bbox.txt", "10 12 200 250\n")
    write_text(root / "Anno_fine" / f"{split}_landmarks.txt",
               "120 31 150 30 0 0 0 0 80 140 160 141 95 230 140 231\n")
  write_images(root / "Img", IMAGES)
  return root


def test_fine_annotations(tmp_path):
  write_fine(tmp_path)
  assert dfa.DeepfashionAttributes.config_for_manual_dir(tmp_path, None) == "fine"
  plan = dfa.read_fine(tmp_path, 26)
  assert plan.spec.attribute_group_names == ("texture", "sleeve", "length", "neckline", "fabric",
                                             "fit")
  assert plan.spec.attribute_groups[:8] == (0,) * 7 + (1,)
  train, val = plan.splits["train"].example(0, 26), plan.splits["val"].example(0, 26)
  assert train["attributes"][[0, 7, 11]].tolist() == [1, 1, 1] and train["attributes"].sum() == 6
  assert (train["category"], val["category"]) == (2, 31)
  assert (train["clothes_type"], val["clothes_type"]) == (0, 1)  # from the category type
  assert_array_equal(train["landmarks_visibility"], [VIS, VIS, ABS, ABS, VIS, VIS, VIS, VIS])
  assert_array_equal(train["landmarks"][[0, 7]], [[120, 31], [140, 231]])
  assert_array_equal(train["bbox"], [10, 12, 200, 250])


def test_fine_files_must_stay_aligned(tmp_path):
  write_fine(tmp_path)
  write_text(tmp_path / "Anno_fine" / "val_cate.txt", "32\n7\n")
  with pytest.raises(formats.AnnotationError, match=r"val_cate.txt: has 2 rows but val.txt lists"):
    dfa.read_fine(tmp_path, 26)
  write_text(tmp_path / "Anno_fine" / "val_cate.txt", "32\n")
  write_text(tmp_path / "Anno_fine" / "test_landmarks.txt", "1 2 3\n")
  with pytest.raises(formats.AnnotationError, match=r"test_landmarks.txt:1: expected 16"):
    dfa.read_fine(tmp_path, 26)
