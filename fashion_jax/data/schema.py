"""The one example schema shared by every dataset builder (synthetic and real).

Every TFDS builder in `fashion_jax.data` yields examples with exactly these fields, so a config can
switch datasets with `--config.data.name=...`. A field a dataset does not annotate is present but
marked missing (visibility `ABSENT`, label `-1`, `has_mask=False`, ...); it is never invented.

Conventions
-----------
* Coordinates are `(x, y)` in pixels of the stored image, with pixel centres at integer
  coordinates (pixel `(row=i, col=j)` covers `[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]`), the
  convention of OpenCV's `warpAffine` and of the published annotation files.
* `bbox` is `(x1, y1, x2, y2)` in the same frame, inclusive corners as in DeepFashion.
* Visibility uses one code for all keypoint fields (`VISIBLE`, `OCCLUDED`, `TRUNCATED`, `ABSENT`).
  Builders translate the published codes: DeepFashion 0/1/2 -> VISIBLE/OCCLUDED/TRUNCATED;
  FashionAI 1/0/-1 -> VISIBLE/OCCLUDED/ABSENT. Coordinates of an ABSENT point are meaningless (0).
* Labels: `category` is a 0-based index into the dataset's `category_names` (-1 missing);
  `attributes` holds 1 positive, 0 negative, -1 unknown; `dcsa_labels` holds 0/1 for the 23 binary
  labels and a 0-based class for the 3 multi-class ones, -1 missing.

Dataset-level facts (category names, attribute names and groups) travel as `DatasetSpec` in the
builder's metadata, so models size their heads from the data, not from constants.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

# Visibility codes (shared by `landmarks_visibility` and `keypoints_visibility`).
ABSENT = -1  # the point does not exist for this garment or is not annotated
OCCLUDED = 0  # inside the image but hidden; coordinates are annotated
VISIBLE = 1
TRUNCATED = 2  # outside the image frame; coordinates may lie outside it

# The 8 DeepFashion landmark slots in the full-body order (docs/datasets.md).
LANDMARK_NAMES = (
    "left_collar", "right_collar", "left_sleeve", "right_sleeve",
    "left_waistline", "right_waistline", "left_hem", "right_hem",
)
# DeepFashion `clothes_type` (published 1/2/3) -> these 0-based codes; slots each type annotates.
CLOTHES_TYPES = ("upper", "lower", "full")
CLOTHES_TYPE_SLOTS = {0: (0, 1, 2, 3, 6, 7), 1: (4, 5, 6, 7), 2: tuple(range(8))}

# The 24 FashionAI keypoints, in the column order of the published CSV.
KEYPOINT_NAMES = (
    "neckline_left", "neckline_right", "center_front", "shoulder_left", "shoulder_right",
    "armpit_left", "armpit_right", "waistline_left", "waistline_right", "cuff_left_in",
    "cuff_left_out", "cuff_right_in", "cuff_right_out", "top_hem_left", "top_hem_right",
    "waistband_left", "waistband_right", "hemline_left", "hemline_right", "crotch",
    "bottom_left_in", "bottom_left_out", "bottom_right_in", "bottom_right_out",
)
FASHIONAI_CATEGORIES = ("blouse", "outwear", "dress", "skirt", "trousers")

# The 26 DCSA labels: 23 binary (alphabetical, as the label files are named) then 3 multi-class.
DCSA_BINARY_LABELS = (
    "black", "blue", "brown", "collar", "cyan", "gender", "gray", "green", "many_colors",
    "necktie", "pattern_floral", "pattern_graphics", "pattern_plaid", "pattern_solid",
    "pattern_spot", "pattern_stripe", "placket", "purple", "red", "scarf", "skin_exposure",
    "white", "yellow",
)
DCSA_MULTICLASS_LABELS = {
    "category": ("Shirt", "Sweater", "T-shirt", "Outerwear", "Suit", "Tank Top", "Dress"),
    "neckline": ("V-shape", "Round", "Other"),
    "sleevelength": ("No sleeves", "Short", "Long"),
}
DCSA_LABELS = DCSA_BINARY_LABELS + tuple(DCSA_MULTICLASS_LABELS)

DOMAINS = ("shop", "street")
# `data.segmented`: the background fill of the segmented image (SisterNetwork's FCN-White).
SEGMENT_FILL = {"white": 255, "black": 0}

# The split names every builder writes. Published names are mapped onto them when a dataset is
# prepared (DeepFashion's and FashionAI's "val" is stored as "validation").
SPLITS = ("train", "validation", "test")
_PUBLISHED_SPLITS = {"val": "validation"}


def canonical_split(name: str) -> str:
  """A published split name -> the stored one ("val" -> "validation")."""
  return _PUBLISHED_SPLITS.get(name, name)


# What a dataset can annotate; a system names the kinds it needs to be trained and scored.
LABEL_KINDS = ("keypoints", "landmarks", "bbox", "category", "attributes", "dcsa_labels", "mask",
               "domain", "item_id")


def _mirror_pairs(names: tuple[str, ...]) -> np.ndarray:
  """Index permutation that swaps every `left`/`right` named point with its partner."""
  perm = []
  for name in names:
    if "left" in name:
      perm.append(names.index(name.replace("left", "right")))
    elif "right" in name:
      perm.append(names.index(name.replace("right", "left")))
    else:
      perm.append(names.index(name))
  return np.asarray(perm, np.int32)


# Applied after a horizontal flip: new[i] = old[FLIP_PERMUTATION[i]].
LANDMARK_FLIP_PERMUTATION = _mirror_pairs(LANDMARK_NAMES)
KEYPOINT_FLIP_PERMUTATION = _mirror_pairs(KEYPOINT_NAMES)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Dataset-level facts a model or metric needs; stored in the TFDS metadata as JSON.

  attribute_groups: one group index per attribute, into `attribute_group_names`.
  labels: the `LABEL_KINDS` the dataset annotates; empty when not recorded (then every kind is
    assumed present, as for datasets prepared before this field existed).
  unlabelled: (split, kinds) pairs: kinds the dataset has but that split lacks, e.g.
    ("test", ("keypoints",)) for FashionAI test CSVs without keypoint columns.
  """

  category_names: tuple[str, ...] = ()
  attribute_names: tuple[str, ...] = ()
  attribute_groups: tuple[int, ...] = ()
  attribute_group_names: tuple[str, ...] = ()
  labels: tuple[str, ...] = ()
  unlabelled: tuple[tuple[str, tuple[str, ...]], ...] = ()

  def __post_init__(self):
    if len(self.attribute_groups) != len(self.attribute_names):
      raise ValueError(
          f"{len(self.attribute_names)} attribute names but {len(self.attribute_groups)} groups")
    if self.attribute_groups and max(self.attribute_groups) >= len(self.attribute_group_names):
      raise ValueError("attribute group index beyond attribute_group_names")
    unknown = set(self.labels).union(*(k for _, k in self.unlabelled)) - set(LABEL_KINDS)
    if unknown:
      raise ValueError(f"unknown label kinds {sorted(unknown)}; known: {LABEL_KINDS}")

  def missing_labels(self, split: str, kinds) -> tuple[str, ...]:
    """The `kinds` that `split` does not annotate (in the order given)."""
    absent = set(dict(self.unlabelled).get(split, ()))
    if self.labels:
      absent |= set(kinds) - set(self.labels)
    return tuple(k for k in kinds if k in absent)

  def same_heads(self, other: DatasetSpec) -> bool:
    """Whether models sized for `other` fit this dataset (same categories and attributes)."""
    fields = ("category_names", "attribute_names", "attribute_groups", "attribute_group_names")
    return all(getattr(self, f) == getattr(other, f) for f in fields)

  @property
  def num_categories(self) -> int:
    return len(self.category_names)

  @property
  def num_attributes(self) -> int:
    return len(self.attribute_names)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self))

  @classmethod
  def from_json(cls, text: str) -> DatasetSpec:
    fields = json.loads(text)
    unlabelled = tuple((split, tuple(kinds)) for split, kinds in fields.pop("unlabelled", ()))
    return cls(**{k: tuple(v) for k, v in fields.items()}, unlabelled=unlabelled)


def features(num_attributes: int, image_encoding: str = "jpeg"):
  """The TFDS `FeaturesDict` of the shared schema.

  Images are given to TFDS as encoded bytes or file paths (array encoding needs TensorFlow).
  """
  import tensorflow_datasets as tfds  # deferred: only builders need it

  tensor = tfds.features.Tensor
  scalar = tfds.features.Scalar
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3), encoding_format=image_encoding),
      "image_id": tfds.features.Text(),
      "mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
      "has_mask": scalar(dtype=np.bool_),
      "bbox": tensor(shape=(4,), dtype=np.float32),
      "has_bbox": scalar(dtype=np.bool_),
      "landmarks": tensor(shape=(len(LANDMARK_NAMES), 2), dtype=np.float32),
      "landmarks_visibility": tensor(shape=(len(LANDMARK_NAMES),), dtype=np.int8),
      "keypoints": tensor(shape=(len(KEYPOINT_NAMES), 2), dtype=np.float32),
      "keypoints_visibility": tensor(shape=(len(KEYPOINT_NAMES),), dtype=np.int8),
      "clothes_type": scalar(dtype=np.int32),
      "fashionai_category": scalar(dtype=np.int32),
      "category": scalar(dtype=np.int32),
      "attributes": tensor(shape=(num_attributes,), dtype=np.int8),
      "dcsa_labels": tensor(shape=(len(DCSA_LABELS),), dtype=np.int8),
      "domain": scalar(dtype=np.int32),
      "item_id": scalar(dtype=np.int64),
  })


def empty_example(num_attributes: int) -> dict[str, np.ndarray]:
  """An example with every annotation marked missing; builders fill in what they have.

  Image, mask and image_id must still be set by the caller (`mask` may stay a 1x1 black PNG
  with `has_mask=False`).
  """
  return {
      "has_mask": np.bool_(False),
      "bbox": np.zeros(4, np.float32),
      "has_bbox": np.bool_(False),
      "landmarks": np.zeros((len(LANDMARK_NAMES), 2), np.float32),
      "landmarks_visibility": np.full(len(LANDMARK_NAMES), ABSENT, np.int8),
      "keypoints": np.zeros((len(KEYPOINT_NAMES), 2), np.float32),
      "keypoints_visibility": np.full(len(KEYPOINT_NAMES), ABSENT, np.int8),
      "clothes_type": np.int32(-1),
      "fashionai_category": np.int32(-1),
      "category": np.int32(-1),
      "attributes": np.full(num_attributes, -1, np.int8),
      "dcsa_labels": np.full(len(DCSA_LABELS), -1, np.int8),
      "domain": np.int32(-1),
      "item_id": np.int64(-1),
  }
