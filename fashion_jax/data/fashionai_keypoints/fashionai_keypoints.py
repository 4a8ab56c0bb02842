"""FashionAI keypoints (2018) as a manual-download TFDS builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fashion_jax.data import formats, manual_builder, schema

SPLITS = ("train", "val", "test")
HEADER = ("image_id", "image_category")
# Published visibility (1 visible, 0 occluded, -1 absent for this category) -> schema codes.
VISIBILITY = {1: schema.VISIBLE, 0: schema.OCCLUDED, -1: schema.ABSENT}
FIELDS = ("keypoints", "keypoints_visibility", "fashionai_category", "category")
LABELS = ("keypoints", "category")

_INSTRUCTIONS = """\
Download the FashionAI Global Challenge 2018 keypoint data (Alibaba Tianchi) and unpack each
part into a split folder of the manual directory:
  train/Images/<category>/<id>.jpg, train/Annotations/train.csv   (fashionAI_key_points_train)
  val/...  and  test/Images/..., test/test.csv                      (optional; e.g. test_a)
Each split folder holds Images/ and exactly one CSV, in Annotations/ or at its top; image_id in
the CSV is relative to the split folder. Test CSVs (image_id,image_category only) give images
without keypoints. Then: python -m fashion_jax.data.prepare --dataset=fashionai_keypoints \\
  --manual_dir=DIR --data_dir=DIR
"""


def find_csv(split_dir: Path) -> Path:
  """The one annotation CSV of a split folder, in `Annotations/` or at the top (not both)."""
  found = sorted(split_dir.glob("Annotations/*.csv")) + sorted(split_dir.glob("*.csv"))
  if len(found) > 1:
    names = ", ".join(p.relative_to(split_dir).as_posix() for p in found)
    raise formats.AnnotationError(split_dir, None, f"several CSV files ({names}); keep one")
  if not found:
    raise FileNotFoundError(f"no annotation CSV in {split_dir}/Annotations or {split_dir}")
  return found[0]


def parse_cell(cell: str, path, line: int, column: str) -> tuple[float, float, int]:
  """`x_y_v` -> (x, y, schema visibility); `-1_-1_-1` is a keypoint this category lacks."""
  parts = cell.split("_")
  if len(parts) != 3:
    raise formats.AnnotationError(path, line, f"{column}: {cell!r} is not x_y_v")
  x, y, v = formats.to_ints(parts, path, line, column)
  formats.to_choice(v, VISIBILITY, path, line, f"{column} visibility")
  if v == -1:
    if (x, y) != (-1, -1):
      raise formats.AnnotationError(path, line, f"{column}: {cell!r} is absent but has x, y")
    return 0.0, 0.0, schema.ABSENT
  if v == 1 and (x < 0 or y < 0):  # occluded (v=0) points may lie past the border
    raise formats.AnnotationError(path, line, f"{column}: {cell!r} is visible at a negative "
                                  "coordinate, outside the image")
  return float(x), float(y), VISIBILITY[v]


def read_split(split_dir: Path) -> tuple[manual_builder.SplitTable, bool]:
  """One split folder; also says whether its CSV has keypoint columns (test CSVs do not)."""
  path = find_csv(split_dir)
  records = formats.read_csv_records(path)
  header = tuple(records[0][1])
  annotated = header == HEADER + schema.KEYPOINT_NAMES
  if not annotated and header != HEADER:
    raise formats.AnnotationError(
        path, records[0][0], "expected the header image_id,image_category[,<24 keypoints>] "
        f"in the published order; found {','.join(header)}")
  if len(records) == 1:
    raise formats.AnnotationError(path, records[0][0], "a header and no rows: the split would "
                                  "be empty (remove the folder to have no such split)")
  names, lines = [], {}
  fields = manual_builder.empty_fields(len(records) - 1, 0, FIELDS)
  for i, (line, row) in enumerate(records[1:]):
    if len(row) != len(header):
      raise formats.AnnotationError(
          path, line, f"expected {len(header)} columns, found {len(row)}")
    name, category = row[0], row[1]
    if name in lines:
      raise formats.AnnotationError(path, line, f"{name} is listed twice (first at line "
                                    f"{lines[name]})")
    if category not in schema.FASHIONAI_CATEGORIES:
      raise formats.AnnotationError(
          path, line, f"image_category {category!r} is not one of {schema.FASHIONAI_CATEGORIES}")
    folder = Path(name).parent.name
    if folder in schema.FASHIONAI_CATEGORIES and folder != category:
      raise formats.AnnotationError(
          path, line, f"{name} lies in the {folder}/ folder but its image_category is "
          f"{category!r}: one of the two is wrong")
    lines[name] = line
    names.append(name)
    fields["fashionai_category"][i] = fields["category"][i] = (
        schema.FASHIONAI_CATEGORIES.index(category))
    if annotated:
      cells = [parse_cell(cell, path, line, column)
               for cell, column in zip(row[2:], schema.KEYPOINT_NAMES, strict=True)]
      fields["keypoints"][i] = np.asarray([c[:2] for c in cells], np.float32)
      fields["keypoints_visibility"][i] = [c[2] for c in cells]
  return manual_builder.SplitTable(names, [split_dir / n for n in names], fields), annotated


def read_fashionai(root: Path) -> manual_builder.Plan:
  folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
  for folder in folders:
    if folder.name not in SPLITS:
      raise formats.AnnotationError(
          folder, None, f"unknown split name {folder.name!r}; split folders are {SPLITS}")
  if not folders:
    raise FileNotFoundError(f"no split folder ({', '.join(SPLITS)}) in {root}")
  splits, notes = {}, []
  for folder in sorted(folders, key=lambda p: SPLITS.index(p.name)):
    table, annotated = read_split(folder)
    if not annotated:
      notes.append(f"split {folder.name!r} has no keypoint columns: keypoints stored ABSENT "
                   "(the split is never scored on keypoints)")
      table.unlabelled = ("keypoints",)
    if len(table):
      splits[folder.name] = table
  return manual_builder.Plan(spec=fashionai_spec(), splits=splits, notes=notes)


def fashionai_spec() -> schema.DatasetSpec:
  return schema.DatasetSpec(category_names=schema.FASHIONAI_CATEGORIES, labels=LABELS)


class FashionaiKeypoints(manual_builder.ManualBuilder):
  """FashionAI: 24 keypoints with visibility and the image category."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  LAYOUT_MARKERS = SPLITS

  def static_spec(self) -> schema.DatasetSpec:
    return fashionai_spec()

  def read_annotations(self, manual_dir: Path) -> manual_builder.Plan:
    return read_fashionai(Path(manual_dir))
