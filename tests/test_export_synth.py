"""End to end: export examples in each real format, prepare them with the real builder, read back.

The examples are hand-made dicts with the synthetic renderer's shape (schema fields plus image,
mask, image_id); a test through the renderer itself belongs with it.
"""

import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fashion_jax.data import datasets, export, prepare, schema

SPEC = schema.DatasetSpec(
    category_names=("tee", "long skirt", "dress"),
    attribute_names=("stripes", "denim", "a-line", "v neck", "boho chic"),
    attribute_groups=(0, 1, 2, 3, 4),
    attribute_group_names=("texture", "fabric", "shape", "part", "style"))
NUM_EXAMPLES = 6  # 3 items x (shop, street)
SPLITS = ("train", "val", "test")
CYCLE = (schema.VISIBLE, schema.OCCLUDED, schema.TRUNCATED)


def make_example(index: int) -> dict:
  rng = np.random.default_rng(index)
  height, width = 36, 44
  ramp = np.add.outer(np.arange(height), np.arange(width))[..., None] * np.array([2, 1, 1])
  example = schema.empty_example(SPEC.num_attributes)
  clothes_type = index % 3
  visibility = np.full(8, schema.ABSENT, np.int8)
  for n, slot in enumerate(schema.CLOTHES_TYPE_SLOTS[clothes_type]):
    visibility[slot] = CYCLE[(n + index) % 3]
  keypoint_visibility = rng.choice(list(CYCLE) + [schema.ABSENT], 24).astype(np.int8)
  keypoints = rng.integers(0, 40, (24, 2)).astype(np.float32)
  keypoints[keypoint_visibility == schema.ABSENT] = 0
  example.update(
      image=(30 + 10 * index + ramp).astype(np.uint8),  # smooth: JPEG keeps it within a few
      mask=np.zeros((height, width, 1), np.uint8), image_id=f"synth_{index}",
      has_mask=np.bool_(True),
      bbox=np.array([2, 3, 40.25, 33.5], np.float32), has_bbox=np.bool_(True),
      landmarks=np.where(visibility[:, None] == schema.ABSENT, 0,
                         rng.integers(0, 40, (8, 2))).astype(np.float32),
      landmarks_visibility=visibility, keypoints=keypoints,
      keypoints_visibility=keypoint_visibility, clothes_type=np.int32(clothes_type),
      fashionai_category=np.int32(index % 5), category=np.int32(index % 3),
      attributes=rng.integers(-1, 2, SPEC.num_attributes).astype(np.int8),
      dcsa_labels=np.concatenate([rng.integers(-1, 2, 23), [index % 7 - 1, 2, -1]]).astype(
          np.int8),
      domain=np.int32(index % 2), item_id=np.int64(index // 2))
  return example


EXAMPLES = [make_example(i) for i in range(NUM_EXAMPLES)]


def split_of(example) -> str:
  return SPLITS[int(example["item_id"]) % 3]


def read_back(tmp_path, fmt: str, dataset: str):
  """Exports, prepares and reads everything back: (spec, {original index: example})."""
  counts = export.export(EXAMPLES, SPEC, fmt, tmp_path / "manual", split_of=split_of)
  summary = prepare.prepare(dataset, tmp_path / "manual", tmp_path / "tfds")
  stored = {schema.canonical_split(split): n for split, n in counts.items()}  # val -> validation
  assert summary.examples == stored and not summary.skipped
  builder = datasets.get_builder(dataset, data_dir=tmp_path / "tfds", config=summary.config)
  read = {}
  for split, source in builder.as_data_source().items():
    indices = []
    for record in range(len(source)):
      example = source[record]
      number = int(re.findall(r"\d+", example["image_id"].decode())[-1])
      index = number - 1 if fmt in ("deepfashion_attributes", "deepfashion_landmarks", "dcsa") \
          else number
      assert split == (schema.canonical_split(split_of(EXAMPLES[index])) if fmt != "dcsa"
                       else "train")
      read[index] = example
      indices.append(index)
    assert indices == sorted(indices)  # records keep the order of the annotation files
  assert sorted(read) == list(range(NUM_EXAMPLES))
  return datasets.dataset_spec(builder), read


def check_image_and_missing_mask(original, example):
  assert example["image"].shape == original["image"].shape
  assert np.abs(example["image"].astype(int) - original["image"]).mean() < 2  # JPEG loss
  assert not example["has_mask"]  # masks are not part of any published format


def test_deepfashion_attributes_round_trip(tmp_path):
  spec, read = read_back(tmp_path, "deepfashion_attributes", "deepfashion_attributes")
  assert spec.same_heads(SPEC)
  assert spec.labels == ("landmarks", "bbox", "category", "attributes") and not spec.unlabelled
  for index, example in read.items():
    original = EXAMPLES[index]
    check_image_and_missing_mask(original, example)
    for field in ("category", "attributes", "landmarks", "landmarks_visibility",
                  "clothes_type"):
      assert_array_equal(example[field], original[field], err_msg=field)
    assert_array_equal(example["bbox"], np.round(original["bbox"]))  # integers in the format
    assert example["domain"] == -1 and (example["keypoints_visibility"] == schema.ABSENT).all()


def test_deepfashion_landmarks_round_trip(tmp_path):
  spec, read = read_back(tmp_path, "deepfashion_landmarks", "deepfashion_landmarks")
  assert spec == schema.DatasetSpec(labels=("landmarks", "bbox"))
  for index, example in read.items():
    original = EXAMPLES[index]
    check_image_and_missing_mask(original, example)
    for field in ("landmarks", "landmarks_visibility", "clothes_type"):
      assert_array_equal(example[field], original[field], err_msg=field)
    assert example["category"] == -1 and example["attributes"].shape == (0,)


def test_fashionai_round_trip(tmp_path):
  spec, read = read_back(tmp_path, "fashionai", "fashionai_keypoints")
  assert spec.category_names == schema.FASHIONAI_CATEGORIES
  for index, example in read.items():
    original = EXAMPLES[index]
    check_image_and_missing_mask(original, example)
    # FashionAI has no truncated code: truncated keypoints come back occluded.
    expected = np.where(original["keypoints_visibility"] == schema.TRUNCATED, schema.OCCLUDED,
                        original["keypoints_visibility"])
    assert_array_equal(example["keypoints_visibility"], expected)
    assert_array_equal(example["keypoints"], original["keypoints"])
    assert example["fashionai_category"] == example["category"] == original["fashionai_category"]
    assert (example["landmarks_visibility"] == schema.ABSENT).all()


def test_dcsa_round_trip(tmp_path):
  spec, read = read_back(tmp_path, "dcsa", "clothing_attributes")
  assert spec.category_names == schema.DCSA_MULTICLASS_LABELS["category"]
  for index, example in read.items():
    original = EXAMPLES[index]
    check_image_and_missing_mask(original, example)
    assert_array_equal(example["dcsa_labels"], original["dcsa_labels"])
    assert example["category"] == original["dcsa_labels"][23]


def test_shop_street_round_trip(tmp_path):
  spec, read = read_back(tmp_path, "shop_street", "shop_street")
  assert spec.attribute_names == SPEC.attribute_names
  assert spec.attribute_group_names == SPEC.attribute_group_names
  for index, example in read.items():
    original = EXAMPLES[index]
    check_image_and_missing_mask(original, example)
    for field in ("domain", "item_id", "attributes", "bbox"):
      assert_array_equal(example[field], original[field], err_msg=field)
    assert spec.category_names[example["category"]] == SPEC.category_names[original["category"]]


def test_what_a_format_cannot_hold_is_refused(tmp_path):
  example = make_example(2)  # full body: every slot annotated
  example["landmarks_visibility"][3] = schema.ABSENT
  with pytest.raises(ValueError, match="synth_2: landmark right_sleeve has visibility -1"):
    export.export([example], SPEC, "deepfashion_landmarks", tmp_path)
  other_groups = schema.DatasetSpec(attribute_names=("red",), attribute_groups=(0,),
                                    attribute_group_names=("colour",))
  with pytest.raises(ValueError, match=r"\['colour'\] are not DeepFashion attribute types"):
    export.export([], other_groups, "deepfashion_attributes", tmp_path)
  del example["item_id"]
  with pytest.raises(ValueError, match=r"'synth_2' lacks \['item_id'\]"):
    export.export([example], SPEC, "shop_street", tmp_path)
