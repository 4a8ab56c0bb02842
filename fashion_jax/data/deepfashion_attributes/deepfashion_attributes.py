"""DeepFashion Category & Attribute Prediction as a manual-download TFDS builder.

Configs: `coarse` (1000 attributes in 5 types, from `Anno/` or its later name `Anno_coarse/`) and
`fine` (26 attributes in 6 groups, from `Anno_fine/`). An exported synthetic set, whose attribute
count differs, is read with a config named `coarse_<N>attr`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from fashion_jax.data import deepfashion_lists as lists
from fashion_jax.data import formats, manual_builder, schema

COARSE_ATTRIBUTE_TYPES = ("texture", "fabric", "shape", "part", "style")
FINE_ATTRIBUTE_GROUPS = ("texture", "sleeve", "length", "neckline", "fabric", "fit")
COARSE_DIRS = ("Anno_coarse", "Anno")
IMAGE_DIRS = ("img", "Img/img")
# Published attribute values (1 positive, -1 negative, 0 unknown) -> schema (1, 0, -1).
ATTRIBUTE_VALUES = {1: 1, -1: 0, 0: -1}
_ATTRIBUTE_TOKENS = {str(k): v for k, v in ATTRIBUTE_VALUES.items()}
FIELDS = ("bbox", "has_bbox", "category", "attributes", "landmarks", "landmarks_visibility",
          "clothes_type")
LABELS = ("landmarks", "bbox", "category", "attributes")

_INSTRUCTIONS = """\
Download "Category and Attribute Prediction Benchmark" of DeepFashion
(https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion.html) and unpack it into the manual directory
so that it holds:
  img/ (from img.zip)  or  Img/img/  (both layouts are accepted)
  Anno/ or Anno_coarse/ with list_category_cloth.txt, list_category_img.txt, list_attr_cloth.txt,
      list_attr_img.txt, list_bbox.txt, list_landmarks.txt          (config `coarse`)
  Anno_fine/ with list_attr_cloth.txt, list_category_cloth.txt (or the coarse one) and
      {train,val,test}.txt, {split}_attr.txt, {split}_cate.txt, {split}_bbox.txt,
      {split}_landmarks.txt                                           (config `fine`)
  Eval/list_eval_partition.txt                                        (config `coarse`)
Then: python -m fashion_jax.data.prepare --dataset=deepfashion_attributes --config=coarse \\
  --manual_dir=DIR --data_dir=DIR
"""


@dataclasses.dataclass(eq=False)
class DeepFashionAttributesConfig(tfds.core.BuilderConfig):
  annotations: str = "coarse"  # "coarse" (Anno/, Anno_coarse/) or "fine" (Anno_fine/)
  num_attributes: int = 1000


def image_base(root: Path) -> Path:
  """The folder whose `img/` the image names (`img/<item>/img_XXXXXXXX.jpg`) are relative to."""
  return formats.find_first(root, IMAGE_DIRS, "DeepFashion image folder").parent


def _check_attribute_count(path, found: int, expected: int, annotations: str) -> None:
  if found != expected:
    raise formats.AnnotationError(
        path, None, f"lists {found} attributes but this config expects {expected}; for a set "
        f"with {found} attributes use config "
        f"{manual_builder.counted_config_name(annotations, found)!r}")


def read_coarse(root: Path, num_attributes: int) -> manual_builder.Plan:
  """Parses the coarse annotations (one list file per field, keyed by image name)."""
  anno = formats.find_first(root, COARSE_DIRS, "DeepFashion coarse annotation folder")
  categories, _ = lists.read_name_type_list(
      anno / "list_category_cloth.txt", "category_name", num_types=3)
  attr_path = anno / "list_attr_cloth.txt"
  attributes, types = lists.read_name_type_list(
      attr_path, "attribute_name", num_types=len(COARSE_ATTRIBUTE_TYPES))
  _check_attribute_count(attr_path, len(attributes), num_attributes, "coarse")
  partition_path = root / "Eval" / "list_eval_partition.txt"
  partition = lists.read_partition(partition_path)
  known = (partition_path, partition)

  category_path = anno / "list_category_img.txt"

  def parse_category(row):
    formats.expect_columns(row, 2, category_path)
    (label,) = formats.to_ints(row.tokens[1:], category_path, row.line, "category_label")
    return formats.to_choice(label, range(1, len(categories) + 1), category_path, row.line,
                             "category_label") - 1

  category = lists.read_per_image(category_path, *known, parse_category)
  attr_img_path = anno / "list_attr_img.txt"
  attribute_values = lists.read_per_image(
      attr_img_path, *known, lambda row: _parse_attribute_row(row, attr_img_path, num_attributes))
  bbox = lists.read_bboxes(anno / "list_bbox.txt", *known)
  landmarks = lists.read_landmarks(anno / "list_landmarks.txt", *known)

  splits = {}
  base = image_base(root)
  for split, names in lists.split_names(partition).items():
    fields = manual_builder.empty_fields(len(names), num_attributes, FIELDS)
    fields.update(lists.landmark_columns(names, landmarks))
    fields["category"][:] = [category[n] for n in names]
    fields["bbox"][:] = [bbox[n] for n in names]
    fields["has_bbox"][:] = True
    fields["attributes"][:] = [attribute_values[n] for n in names]
    splits[split] = manual_builder.SplitTable(names, lists.image_paths(base, names), fields)
  spec = schema.DatasetSpec(category_names=categories, attribute_names=attributes,
                            attribute_groups=types, attribute_group_names=COARSE_ATTRIBUTE_TYPES,
                            labels=LABELS)
  notes = [f"annotations read from {anno.name}/", lists.variation_note(landmarks)]
  return manual_builder.Plan(spec=spec, splits=splits, notes=notes)


def _parse_attribute_row(row: formats.Row, path, num_attributes: int) -> np.ndarray:
  """`image_name` then published values -> [num_attributes] int8 schema values."""
  formats.expect_columns(row, 1 + num_attributes, path)
  try:  # fast path: ~290k rows of 1000 cells, almost all spelled exactly "1", "-1", "0"
    return np.asarray([_ATTRIBUTE_TOKENS[t] for t in row.tokens[1:]], np.int8)
  except KeyError:
    values = formats.to_ints(row.tokens[1:], path, row.line, "attribute_labels")
    return np.asarray([ATTRIBUTE_VALUES[formats.to_choice(
        v, ATTRIBUTE_VALUES, path, row.line, "attribute value")] for v in values], np.int8)


def _aligned_rows(fine: Path, split: str, suffix: str, num_images: int,
                  columns: int) -> tuple[Path, list[formats.Row]]:
  """A header-less `{split}_{suffix}.txt` of Anno_fine, aligned line by line with `{split}.txt`."""
  path = fine / f"{split}_{suffix}.txt"
  rows = formats.read_rows(path)
  if len(rows) != num_images:
    raise formats.AnnotationError(
        path, None, f"has {len(rows)} rows but {split}.txt lists {num_images} images (the files "
        "are aligned line by line)")
  for row in rows:
    formats.expect_columns(row, columns, path)
  return path, rows


def _read_fine_split(fine: Path, split: str, num_images: int, category_types: tuple[int, ...],
                     num_attributes: int) -> dict[str, np.ndarray]:
  fields = manual_builder.empty_fields(num_images, num_attributes, FIELDS)
  path, rows = _aligned_rows(fine, split, "attr", num_images, num_attributes)
  for i, row in enumerate(rows):
    values = formats.to_ints(row.tokens, path, row.line, "attribute")
    for value in values:
      formats.to_choice(value, (0, 1), path, row.line, "attribute")
    fields["attributes"][i] = values
  path, rows = _aligned_rows(fine, split, "cate", num_images, 1)
  for i, row in enumerate(rows):
    (label,) = formats.to_ints(row.tokens, path, row.line, "category")
    formats.to_choice(label, range(1, len(category_types) + 1), path, row.line, "category")
    fields["category"][i] = label - 1
    fields["clothes_type"][i] = category_types[label - 1]
  path, rows = _aligned_rows(fine, split, "bbox", num_images, 4)
  for i, row in enumerate(rows):
    fields["bbox"][i] = formats.to_box(row.tokens, path, row.line)
  fields["has_bbox"][:] = True
  path, rows = _aligned_rows(fine, split, "landmarks", num_images, 2 * lists.NUM_SLOTS)
  for i, row in enumerate(rows):
    points = np.asarray(formats.to_floats(row.tokens, path, row.line, "landmark"), np.float32)
    fields["landmarks"][i] = points.reshape(lists.NUM_SLOTS, 2)
    fields["landmarks_visibility"][i] = np.where(
        fields["landmarks"][i].any(axis=1), schema.VISIBLE, schema.ABSENT)
  return fields


def read_fine(root: Path, num_attributes: int) -> manual_builder.Plan:
  """Parses `Anno_fine/` (per-split files aligned line by line, no headers, no visibility).

  Landmarks come as 8 (x, y) pairs in the full-body slot order without visibility: a (0, 0) pair
  is stored ABSENT, any other VISIBLE. `clothes_type` is the image category's published type.
  """
  fine = formats.find_first(root, ("Anno_fine",), "DeepFashion fine annotation folder")
  category_list = formats.find_first(
      root, [f"{d}/list_category_cloth.txt" for d in ("Anno_fine",) + COARSE_DIRS],
      "list_category_cloth.txt")
  categories, category_types = lists.read_name_type_list(
      category_list, "category_name", num_types=3)
  attr_path = fine / "list_attr_cloth.txt"
  attributes, groups = lists.read_name_type_list(
      attr_path, "attribute_name", num_types=len(FINE_ATTRIBUTE_GROUPS))
  _check_attribute_count(attr_path, len(attributes), num_attributes, "fine")
  present = [s for s in lists.SPLITS if (fine / f"{s}.txt").exists()]
  if not present:
    raise FileNotFoundError(f"no split lists ({', '.join(lists.SPLITS)}.txt) in {fine}")

  splits, seen, base = {}, {}, image_base(root)
  for split in present:
    names_path = fine / f"{split}.txt"
    names = []
    for row in formats.read_rows(names_path):
      formats.expect_columns(row, 1, names_path, "image name")
      if row.name in seen:
        raise formats.AnnotationError(
            names_path, row.line, f"{row.name} is already listed at {seen[row.name]}")
      seen[row.name] = f"{names_path.name}:{row.line}"
      names.append(row.name)
    fields = _read_fine_split(fine, split, len(names), category_types, num_attributes)
    splits[split] = manual_builder.SplitTable(names, lists.image_paths(base, names), fields)
  spec = schema.DatasetSpec(category_names=categories, attribute_names=attributes,
                            attribute_groups=groups, attribute_group_names=FINE_ATTRIBUTE_GROUPS,
                            labels=LABELS)
  notes = ["Anno_fine has no landmark visibility: annotated points are stored VISIBLE, "
           "(0, 0) pairs ABSENT"]
  return manual_builder.Plan(spec=spec, splits=splits, notes=notes)


class DeepfashionAttributes(manual_builder.ManualBuilder):
  """DeepFashion Category & Attribute Prediction (coarse or fine annotations)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  HOMEPAGE = "https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion.html"
  LAYOUT_MARKERS = ("Eval", *COARSE_DIRS, "Anno_fine")
  BUILDER_CONFIGS = [
      DeepFashionAttributesConfig(
          name="coarse", annotations="coarse", num_attributes=1000,
          description="50 categories, 1000 attributes in 5 types, 8 landmarks, bbox."),
      DeepFashionAttributesConfig(
          name="fine", annotations="fine", num_attributes=26,
          description="Anno_fine: 26 attributes in 6 groups, landmarks without visibility."),
  ]
  DEFAULT_ATTRIBUTES = {c.annotations: c.num_attributes for c in BUILDER_CONFIGS}

  @classmethod
  def config_from_name(cls, name: str):
    parsed = manual_builder.parse_counted_config_name(name)
    if parsed is None or parsed[0] not in cls.DEFAULT_ATTRIBUTES:
      return name  # TFDS refuses it, listing the known configs
    return DeepFashionAttributesConfig(
        name=name, annotations=parsed[0], num_attributes=parsed[1],
        description=f"{parsed[0]} annotations with {parsed[1]} attributes")

  @classmethod
  def config_for_manual_dir(cls, manual_dir, requested: str | None):
    """`coarse` or `fine` as found (coarse first), `*_<N>attr` for a non-published count."""
    if requested is not None:
      return requested
    root = Path(manual_dir)
    annotations = "coarse" if any((root / d).is_dir() for d in COARSE_DIRS) else "fine"
    anno = (formats.find_first(root, COARSE_DIRS, "DeepFashion coarse annotation folder")
            if annotations == "coarse" else root / "Anno_fine")
    count = len(formats.read_listing(anno / "list_attr_cloth.txt", "attribute_name"))
    if count == cls.DEFAULT_ATTRIBUTES[annotations]:
      return annotations
    return manual_builder.counted_config_name(annotations, count)

  def read_annotations(self, manual_dir: Path) -> manual_builder.Plan:
    reader = read_coarse if self.builder_config.annotations == "coarse" else read_fine
    return reader(Path(manual_dir), self.builder_config.num_attributes)
