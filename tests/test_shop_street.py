"""shop_street: the documented CSV layout for MTCT and its bad-input cases."""

import pytest
from fixtures.real import write_images, write_text
from numpy.testing import assert_array_equal

from fashion_jax.data import formats
from fashion_jax.data.shop_street import shop_street

HEADER = ("image,domain,item_id,category,x1,y1,x2,y2,"
          "color/red,color/navy blue,sleeve/long,sleeve/short")
TRAIN = f"""\
{HEADER}
shop/item7_0.jpg,shop,7,T-shirt,1.5,2,30,31.25,1,0,,1
street/item7_1.jpg,street,7,T-shirt,,,,,1,0,0,-1
street/item9_1.jpg,street,9,,0,0,31,31,0,1,1,0
"""
TEST = f"""\
{HEADER}
"shop/item, 12.jpg",shop,12,Coat,,,,,-1,-1,1,0
"""


def write_shop_street(root):
  write_text(root / "train.csv", TRAIN)
  write_text(root / "test.csv", TEST)
  write_images(root, ["shop/item7_0.jpg", "street/item7_1.jpg", "street/item9_1.jpg",
                      "shop/item, 12.jpg"])
  return root


def test_layout(tmp_path):
  write_shop_street(tmp_path)
  assert shop_street.ShopStreet.config_for_manual_dir(tmp_path, None) == "csv_4attr"
  plan = shop_street.read_shop_street(tmp_path, num_attributes=4)
  spec = plan.spec
  assert spec.category_names == ("Coat", "T-shirt")  # sorted over all split files
  assert spec.attribute_names == ("red", "navy blue", "long", "short")
  assert spec.attribute_groups == (0, 0, 1, 1)
  assert spec.attribute_group_names == ("color", "sleeve")
  train = plan.splits["train"]
  shop, street, other = (train.example(i, 4) for i in range(3))
  assert (shop["domain"], street["domain"]) == (0, 1)
  assert shop["item_id"] == street["item_id"] == 7 and other["item_id"] == 9
  assert shop["category"] == street["category"] == 1 and other["category"] == -1
  assert_array_equal(shop["bbox"], [1.5, 2, 30, 31.25])
  assert shop["has_bbox"] and not street["has_bbox"]
  assert_array_equal(shop["attributes"], [1, 0, -1, 1])  # empty cell = unknown
  assert_array_equal(street["attributes"], [1, 0, 0, -1])
  coat = plan.splits["test"].example(0, 4)
  assert coat["category"] == 0 and plan.splits["test"].image_paths[0].name == "item, 12.jpg"
  assert (shop["landmarks_visibility"] == -1).all() and (shop["dcsa_labels"] == -1).all()


def test_optional_columns_may_be_left_out(tmp_path):
  write_text(tmp_path / "train.csv", "image,domain,item_id,color/red\na.jpg,shop,0,1\n")
  plan = shop_street.read_shop_street(tmp_path, num_attributes=1)
  example = plan.splits["train"].example(0, 1)
  assert plan.spec.category_names == () and example["category"] == -1
  assert not example["has_bbox"] and example["attributes"].tolist() == [1]


@pytest.mark.parametrize("old,new,message", [
    ("shop,7,T-shirt,1.5", "store,7,T-shirt,1.5", r"train.csv:2: domain 'store'"),
    ("street,9,", "street,nine,", r"train.csv:4: item_id: 'nine' is not an integer"),
    ("1,0,,1\n", "1,0,,2\n", r"train.csv:2: sleeve/short: '2' is not 1, 0, -1 or empty"),
    ("1,0,0,-1\n", "1,0,0\n", r"train.csv:3: expected 12 columns, found 11"),
    ("1.5,2,30", "1.5,two,30", r"train.csv:2: bbox: 'two' is not a number"),
    ("1.5,2,30,31.25", "30,2,1.5,31.25", r"train.csv:2: bbox: \[30.0, 2.0, 1.5, 31.25\] is not"),
    ("sleeve/long", "sleeve_long", r"train.csv:1: column 'sleeve_long': expected <group>/"),
    ("street/item9_1.jpg", "shop/item7_0.jpg", r"train.csv:4: shop/item7_0.jpg is already"),
])
def test_bad_rows(tmp_path, old, new, message):
  write_shop_street(tmp_path)
  write_text(tmp_path / "train.csv", TRAIN.replace(old, new, 1))
  with pytest.raises(formats.AnnotationError, match=message):
    shop_street.read_shop_street(tmp_path, num_attributes=4)


def test_split_files(tmp_path):
  write_shop_street(tmp_path)
  write_text(tmp_path / "test.csv", TEST.replace("sleeve/short", "sleeve/half"))
  with pytest.raises(formats.AnnotationError, match=r"test.csv:1: header differs"):
    shop_street.read_shop_street(tmp_path, 4)
  write_text(tmp_path / "test.csv", TEST)
  write_text(tmp_path / "validation.csv", TEST)
  with pytest.raises(formats.AnnotationError, match=r"validation.csv: unknown split name"):
    shop_street.read_shop_street(tmp_path, 4)
  (tmp_path / "validation.csv").unlink()
  write_text(tmp_path / "test.csv", f"{HEADER}\n")
  with pytest.raises(formats.AnnotationError, match=r"test.csv:1: a header and no rows"):
    shop_street.read_shop_street(tmp_path, 4)
  write_text(tmp_path / "test.csv", TEST)
  with pytest.raises(formats.AnnotationError, match=r"train.csv:1: .*'csv_4attr'"):
    shop_street.read_shop_street(tmp_path, 3)
  (tmp_path / "train.csv").unlink()
  with pytest.raises(FileNotFoundError, match="train.csv"):
    shop_street.read_shop_street(tmp_path, 4)
