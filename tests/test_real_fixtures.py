"""The whole-dataset fixture writers of fixtures.real: the readers accept what they write, and the
plans hold what the writers promise."""

import numpy as np
import pytest
from fixtures.more_real import (
  DCSA_FOLDER,
  SHOP_STREET_ATTRIBUTES,
  write_dcsa,
  write_fashionai,
  write_shop_street,
)
from fixtures.real import (
  DEEPFASHION_CATEGORY_TYPES,
  DEEPFASHION_EMPTY_CATEGORY_IDS,
  MAX_SIDE,
  MIN_SIDE,
  write_deepfashion_coarse,
  write_deepfashion_fine,
)
from numpy.testing import assert_array_equal
from PIL import Image

from fashion_jax.data import manual_builder, schema
from fashion_jax.data.clothing_attributes import clothing_attributes
from fashion_jax.data.deepfashion_attributes import deepfashion_attributes as dfa
from fashion_jax.data.fashionai_keypoints import fashionai_keypoints as fai
from fashion_jax.data.shop_street import shop_street
from fashion_jax.data.synth.spec import FASHIONAI_KEYPOINTS
from fashion_jax.metrics import FASHIONAI_NORMALISER

VIS, OCC, TRU, ABS = schema.VISIBLE, schema.OCCLUDED, schema.TRUNCATED, schema.ABSENT
SPLITS = {"train": 8, "val": 4, "test": 4}


def image_sizes(table) -> np.ndarray:
  """[N, 2] (width, height) of the split's images."""
  sizes = []
  for path in table.image_paths:
    with Image.open(path) as image:
      sizes.append(image.size)
  return np.asarray(sizes)


def check_images(plan) -> dict:
  """Every image decodes as an RGB JPEG of 48..96 px a side; returns the sizes per split."""
  checked = manual_builder.validate_images(plan, workers=1)
  assert not checked.skipped and checked.num_reencoded == 0
  sizes = {split: image_sizes(table) for split, table in plan.splits.items()}
  for split_sizes in sizes.values():
    assert ((split_sizes >= MIN_SIDE) & (split_sizes <= MAX_SIDE)).all()
  return sizes


def inside(points, boxes) -> np.ndarray:
  """[N, K] whether points [N, K, 2] lie in boxes [N, 4] (inclusive corners)."""
  x, y = points[..., 0], points[..., 1]
  b = boxes[:, None, :]
  return (x >= b[..., 0]) & (x <= b[..., 2]) & (y >= b[..., 1]) & (y <= b[..., 3])


def check_boxes(table, sizes) -> None:
  bbox = table.fields["bbox"]
  assert table.fields["has_bbox"].all()
  assert (bbox[:, :2] >= 0).all() and (bbox[:, 2:] <= sizes - 1).all()
  assert (bbox[:, 2:] - bbox[:, :2] >= 0.5 * sizes).all()  # not degenerate


# ---- DeepFashion coarse ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def coarse(tmp_path_factory):
  root = write_deepfashion_coarse(tmp_path_factory.mktemp("coarse"))
  return root, dfa.read_coarse(root, num_attributes=1000)


def test_coarse_splits_categories_and_files(coarse):
  root, plan = coarse
  assert {s: len(t) for s, t in plan.splits.items()} == SPLITS
  assert dfa.DeepfashionAttributes.config_for_manual_dir(root, None) == "coarse"
  assert len(plan.spec.category_names) == 50 and plan.spec.category_names[40] == "Dress"
  for table in plan.splits.values():
    category, clothes_type = table.fields["category"], table.fields["clothes_type"]
    assert set(clothes_type) == {0, 1, 2}  # every clothes type in every split
    assert not set(category + 1) & set(DEEPFASHION_EMPTY_CATEGORY_IDS)
    assert_array_equal(clothes_type, [DEEPFASHION_CATEGORY_TYPES[c] - 1 for c in category])
    for name in table.image_ids:
      assert name.startswith("img/") and name.count("/") == 2
  # As published: the landmark header names variation_type, the rows lack it.
  landmarks = (root / "Anno" / "list_landmarks.txt").read_text().splitlines()
  assert landmarks[0] == "16" and "variation_type" in landmarks[1]
  assert any("no variation_type" in note for note in plan.notes)
  # Zero-padded bbox cells.
  bbox_rows = (root / "Anno" / "list_bbox.txt").read_text().splitlines()[2:]
  assert all(len(cell) == 3 for row in bbox_rows for cell in row.split()[1:])


def test_coarse_attributes(coarse):
  _, plan = coarse
  spec = plan.spec
  assert spec.num_attributes == 1000 and len(set(spec.attribute_names)) == 1000
  assert any(" " in name for name in spec.attribute_names)
  groups = np.asarray(spec.attribute_groups)
  assert set(groups) == set(range(5))
  unknown = 0
  for table in plan.splits.values():
    values = table.fields["attributes"]
    assert set(np.unique(values)) <= {-1, 0, 1}
    for group in range(5):  # a positive of every type in every image
      assert ((values[:, groups == group] == 1).sum(axis=1) >= 1).all()
    assert (values == 1).sum(axis=1).max() <= 10  # sparse
    unknown += (values == -1).sum()
  assert unknown > 0


def test_coarse_bbox_and_landmarks(coarse):
  _, plan = coarse
  sizes = check_images(plan)
  codes = []
  for split, table in plan.splits.items():
    check_boxes(table, sizes[split])
    points, vis = table.fields["landmarks"], table.fields["landmarks_visibility"]
    for i, kind in enumerate(table.fields["clothes_type"]):
      slots = schema.CLOTHES_TYPE_SLOTS[int(kind)]
      assert (vis[i, list(slots)] != ABS).all()
      assert (vis[i, [s for s in range(8) if s not in slots]] == ABS).all()
    in_box = inside(points, table.fields["bbox"])
    assert ((vis == VIS) & in_box).sum(axis=1).min() >= 2
    assert in_box[(vis == VIS) | (vis == OCC)].all()
    width, height = sizes[split][:, None, 0], sizes[split][:, None, 1]
    truncated = vis == TRU
    assert ((points[..., 0] >= width) | (points[..., 1] >= height))[truncated].all()
    assert (points == np.round(points)).all()
    codes.append(vis.ravel())
  codes = np.concatenate(codes)
  assert (codes == OCC).any() and (codes == TRU).any()
  assert (codes == VIS).sum() > (codes == OCC).sum() + (codes == TRU).sum()


def test_coarse_other_sizes_and_determinism(tmp_path):
  sizes = (("train", 3), ("val", 1), ("test", 2))
  a = write_deepfashion_coarse(tmp_path / "a", sizes, num_attributes=12, seed=3)
  b = write_deepfashion_coarse(tmp_path / "b", sizes, num_attributes=12, seed=3)
  for path in sorted(p for p in a.rglob("*") if p.is_file()):
    assert path.read_bytes() == (b / path.relative_to(a)).read_bytes()
  assert dfa.DeepfashionAttributes.config_for_manual_dir(a, None) == "coarse_12attr"
  plan = dfa.read_coarse(a, 12)
  assert {s: len(t) for s, t in plan.splits.items()} == dict(sizes)
  assert set(plan.splits["train"].fields["clothes_type"]) == {0, 1, 2}
  assert set(plan.spec.attribute_groups) == set(range(5))
  other = write_deepfashion_coarse(tmp_path / "c", sizes, num_attributes=12, seed=4)
  partition = "Eval/list_eval_partition.txt"
  assert (other / partition).read_bytes() != (a / partition).read_bytes()


# ---- DeepFashion fine -----------------------------------------------------------------------

def test_fine(tmp_path):
  root = write_deepfashion_fine(tmp_path)
  assert dfa.DeepfashionAttributes.config_for_manual_dir(root, None) == "fine"
  plan = dfa.read_fine(root, 26)
  assert {s: len(t) for s, t in plan.splits.items()} == SPLITS
  sizes = check_images(plan)
  groups = np.asarray(plan.spec.attribute_groups)
  assert plan.spec.attribute_group_names == dfa.FINE_ATTRIBUTE_GROUPS
  for split, table in plan.splits.items():
    values = table.fields["attributes"]
    assert set(np.unique(values)) <= {0, 1}
    for group in range(6):
      assert_array_equal(values[:, groups == group].sum(axis=1), 1)
    assert set(table.fields["clothes_type"]) == {0, 1, 2}
    assert_array_equal(table.fields["clothes_type"],
                       [DEEPFASHION_CATEGORY_TYPES[c] - 1 for c in table.fields["category"]])
    check_boxes(table, sizes[split])
    vis = table.fields["landmarks_visibility"]
    for i, kind in enumerate(table.fields["clothes_type"]):
      expected = np.full(8, ABS)
      expected[list(schema.CLOTHES_TYPE_SLOTS[int(kind)])] = VIS
      assert_array_equal(vis[i], expected)
    assert inside(table.fields["landmarks"], table.fields["bbox"])[vis == VIS].all()
  assert not (root / "Anno").exists() and (root / "img").is_dir()


# ---- FashionAI ------------------------------------------------------------------------------

def test_fashionai(tmp_path):
  root = write_fashionai(tmp_path, val=5)
  plan = fai.read_fashionai(root)
  assert {s: len(t) for s, t in plan.splits.items()} == {"train": 16, "val": 5, "test": 4}
  sizes = check_images(plan)
  header = (root / "test" / "test.csv").read_text().splitlines()[0]
  assert header == "image_id,image_category"  # no keypoint columns
  assert (root / "val" / "Annotations" / "val.csv").is_file()
  assert any("'test' has no keypoint columns" in note for note in plan.notes)
  assert (plan.splits["test"].fields["keypoints_visibility"] == ABS).all()
  occluded = 0
  for split in ("train", "val"):
    table = plan.splits[split]
    category = table.fields["fashionai_category"]
    assert set(category) == set(range(5))
    points, vis = table.fields["keypoints"], table.fields["keypoints_visibility"]
    for i, c in enumerate(category):
      name = schema.FASHIONAI_CATEGORIES[c]
      present = [k in FASHIONAI_KEYPOINTS[name] for k in schema.KEYPOINT_NAMES]
      assert_array_equal(vis[i] != ABS, present)
      a, b = (schema.KEYPOINT_NAMES.index(k) for k in FASHIONAI_NORMALISER[name])
      assert vis[i, a] == vis[i, b] == VIS
      assert np.linalg.norm(points[i, a] - points[i, b]) >= 10
      assert table.image_paths[i].parent.name == name
    annotated = vis != ABS
    assert (points[annotated] >= 0).all()
    assert (points[..., 0] <= sizes[split][:, None, 0] - 1)[annotated].all()
    assert (points[..., 1] <= sizes[split][:, None, 1] - 1)[annotated].all()
    occluded += (vis == OCC).sum()
  assert occluded > 0


def test_fashionai_without_val_or_test(tmp_path):
  plan = fai.read_fashionai(write_fashionai(tmp_path, num_train=6, num_test=0, seed=1))
  assert list(plan.splits) == ["train"] and len(plan.splits["train"]) == 6
  assert not (tmp_path / "val").exists()


# ---- DCSA -----------------------------------------------------------------------------------

@pytest.mark.parametrize("top_folder", [False, True])
def test_dcsa(tmp_path, top_folder):
  root = write_dcsa(tmp_path, top_folder=top_folder)
  base = root / DCSA_FOLDER if top_folder else root
  assert (base / "images" / "000024.jpg").is_file() and (base / "labels").is_dir()
  plan = clothing_attributes.read_dcsa(base)
  table = plan.splits["train"]
  assert len(table) == 24 and table.image_ids[0] == "images/000001.jpg"
  check_images(plan)
  labels = table.fields["dcsa_labels"]
  assert labels.shape == (24, 26)
  for j, label in enumerate(schema.DCSA_LABELS):
    classes = len(schema.DCSA_MULTICLASS_LABELS.get(label, (0, 1)))
    assert set(labels[:, j]) == {-1, *range(classes)}  # every code, and some missing
  assert_array_equal(table.fields["category"], labels[:, schema.DCSA_LABELS.index("category")])


def test_dcsa_fewer_images_than_codes_and_determinism(tmp_path):
  plan = clothing_attributes.read_dcsa(write_dcsa(tmp_path / "a", num_images=5, seed=2))
  labels = plan.splits["train"].fields["dcsa_labels"]
  assert labels.shape == (5, 26)
  # 5 of the 7 categories, each once, none missing; binary labels hold both codes and a NaN.
  assert sorted(labels[:, schema.DCSA_LABELS.index("category")]) == [0, 1, 2, 3, 4]
  assert set(labels[:, schema.DCSA_LABELS.index("black")]) == {-1, 0, 1}
  write_dcsa(tmp_path / "b", num_images=5, seed=2)
  for path in sorted((tmp_path / "a").rglob("*.*")):
    assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


# ---- Shop/street ----------------------------------------------------------------------------

@pytest.mark.parametrize("num_items,counts", [(8, (6, 1, 1)), (16, (12, 2, 2))])
def test_shop_street(tmp_path, num_items, counts):
  root = write_shop_street(tmp_path, num_items=num_items)
  num_attributes = sum(len(a) for a in SHOP_STREET_ATTRIBUTES.values())
  assert shop_street.ShopStreet.config_for_manual_dir(root, None) == f"csv_{num_attributes}attr"
  plan = shop_street.read_shop_street(root, num_attributes)
  assert {s: len(t) for s, t in plan.splits.items()} == dict(
      zip(("train", "val", "test"), (3 * c for c in counts), strict=True))
  sizes = check_images(plan)
  assert plan.spec.attribute_group_names == tuple(SHOP_STREET_ATTRIBUTES)
  groups = np.asarray(plan.spec.attribute_groups)
  items = {}
  for split, table in plan.splits.items():
    fields = table.fields
    for group in range(len(SHOP_STREET_ATTRIBUTES)):
      assert_array_equal((fields["attributes"][:, groups == group] == 1).sum(axis=1), 1)
    assert set(np.unique(fields["attributes"])) == {0, 1}
    for item in np.unique(fields["item_id"]):
      rows = np.flatnonzero(fields["item_id"] == item)
      assert sorted(fields["domain"][rows]) == [0, 1, 1]  # one shop, two street
      assert (fields["attributes"][rows] == fields["attributes"][rows[0]]).all()
      assert len(set(fields["category"][rows])) == 1 and fields["category"][rows[0]] >= 0
      assert item not in items
      items[item] = split
    boxed = fields["has_bbox"]
    assert boxed.any() and not boxed.all()
    bbox, size = fields["bbox"][boxed], sizes[split][boxed]
    assert (bbox[:, :2] >= 0).all() and (bbox[:, 2:] <= size - 1).all()
    assert (bbox[:, 2:] > bbox[:, :2]).all()
  assert sorted(items) == list(range(1, num_items + 1))
