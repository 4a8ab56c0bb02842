"""Readers of the DeepFashion `list_*.txt` files shared by Category & Attribute and FLD.

Formats (docs/datasets.md): every list starts with a count line and a column-name line; rows
are whitespace separated with alignment padding; image names are paths like `img/<item>/img_1.jpg`
relative to the folder that holds `img/`.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from fashion_jax.data import formats, schema

T = TypeVar("T")
SPLITS = ("train", "val", "test")
# Published visibility (0 visible, 1 occluded, 2 truncated) -> the schema's codes.
VISIBILITY = {0: schema.VISIBLE, 1: schema.OCCLUDED, 2: schema.TRUNCATED}
# Published variation_type values: 1 normal pose ... 5 large zoom-in (FLD); 0 occurs in some
# copies of the Category & Attribute file, so it is accepted as "not given".
VARIATION_TYPES = range(6)
NUM_SLOTS = len(schema.LANDMARK_NAMES)


def read_name_type_list(path, first_column: str, num_types: int):
  """`list_category_cloth.txt` / `list_attr_cloth.txt`: a name (may contain single spaces) and a
  1-based type, split from the right.

  Returns:
    names: tuple of str; types: tuple of 0-based type indices.
  """
  names, types = [], []
  for row in formats.read_listing(path, first_column):
    if len(row.tokens) < 2:
      raise formats.AnnotationError(path, row.line, "expected a name and a type")
    (kind,) = formats.to_ints(row.tokens[-1:], path, row.line, "type")
    formats.to_choice(kind, range(1, num_types + 1), path, row.line, "type")
    names.append(" ".join(row.tokens[:-1]))
    types.append(kind - 1)
  return tuple(names), tuple(types)


def read_partition(path) -> dict[str, tuple[int, str]]:
  """`list_eval_partition.txt`: image name -> (line, split), in file order."""

  def parse(row):
    formats.expect_columns(row, 2, path)
    if row.tokens[1] not in SPLITS:
      raise formats.AnnotationError(
          path, row.line, f"unknown split name {row.tokens[1]!r}; expected one of {SPLITS}")
    return row.tokens[1]

  return formats.index_rows(formats.iter_listing(path, "image_name"), path, parse)


def read_per_image(path, partition_path, partition: dict, parse: Callable[[formats.Row], T]
                   ) -> dict[str, T]:
  """A per-image list file parsed row by row, refusing an image that the partition does not
  list, or that it lists and this file does not."""
  index = formats.index_rows(formats.iter_listing(path, "image_name"), path, parse)
  formats.check_same_names(partition, partition_path, index, path)
  return {name: value for name, (_, value) in index.items()}


def read_bboxes(path, partition_path, partition: dict) -> dict[str, np.ndarray]:
  """`list_bbox.txt`: `image_name x_1 y_1 x_2 y_2` -> [4] float32 (x1, y1, x2, y2) pixels."""

  def parse(row):
    formats.expect_columns(row, 5, path)
    return np.asarray(formats.to_box(row.tokens[1:], path, row.line), np.float32)

  return read_per_image(path, partition_path, partition, parse)


@dataclasses.dataclass(frozen=True)
class LandmarkRow:
  """One parsed landmark row in the 8 full-body slots.

  clothes_type: 0 upper, 1 lower, 2 full (published 1/2/3).
  variation_type: the published value, or None when the row has no such column.
  landmarks: [8, 2] (x, y) pixels, 0 where absent.
  visibility: [8] schema codes, ABSENT for slots this clothes type does not have.
  """

  clothes_type: int
  variation_type: int | None
  landmarks: np.ndarray
  visibility: np.ndarray


def landmark_row_lengths(num_points: int) -> dict[int, bool]:
  """Valid token counts after the image name -> whether the row has a variation_type column.

  Rows hold `clothes_type`, optionally `variation_type`, then (v, x, y) for the clothes type's
  points, possibly padded with zero triples to 8 (FLD). The counts never collide.
  """
  lengths = {}
  for has_variation in (False, True):
    for triples in {num_points, NUM_SLOTS}:
      lengths[1 + has_variation + 3 * triples] = has_variation
  return lengths


def parse_landmark_row(row: formats.Row, path) -> LandmarkRow:
  tokens = row.tokens[1:]
  if not tokens:
    raise formats.AnnotationError(path, row.line, "expected clothes_type and landmarks")
  (published_type,) = formats.to_ints(tokens[:1], path, row.line, "clothes_type")
  formats.to_choice(published_type, (1, 2, 3), path, row.line, "clothes_type")
  clothes_type = published_type - 1
  slots = schema.CLOTHES_TYPE_SLOTS[clothes_type]
  lengths = landmark_row_lengths(len(slots))
  if len(tokens) not in lengths:
    formats.expect_columns(row, sorted(n + 1 for n in lengths), path,
                           f"columns for clothes_type {published_type}")
  has_variation = lengths[len(tokens)]
  variation = None
  if has_variation:
    (variation,) = formats.to_ints(tokens[1:2], path, row.line, "variation_type")
    formats.to_choice(variation, VARIATION_TYPES, path, row.line, "variation_type")
  cells = tokens[1 + has_variation:]
  codes = formats.to_ints(cells[0::3], path, row.line, "landmark visibility")
  coords = np.asarray(formats.to_floats([c for i, c in enumerate(cells) if i % 3], path, row.line,
                                        "landmark location"), np.float32).reshape(-1, 2)
  for pad in range(len(slots), len(codes)):  # FLD pads with (0, 0, 0) triples
    if codes[pad] != 0 or coords[pad].any():
      raise formats.AnnotationError(
          path, row.line, f"landmark {pad + 1} pads a clothes_type {published_type} row and "
          "must be 0 0 0")
  landmarks = np.zeros((NUM_SLOTS, 2), np.float32)
  visibility = np.full(NUM_SLOTS, schema.ABSENT, np.int8)
  for point, slot in enumerate(slots):
    code = formats.to_choice(codes[point], VISIBILITY, path, row.line, "landmark visibility")
    landmarks[slot] = coords[point]
    visibility[slot] = VISIBILITY[code]
  return LandmarkRow(clothes_type, variation, landmarks, visibility)


def read_landmarks(path, partition_path, partition: dict) -> dict[str, LandmarkRow]:
  """`list_landmarks.txt`, with or without `variation_type` (decided by counting tokens); the
  whole file must use one layout."""
  layout = None

  def parse(row):
    nonlocal layout
    parsed = parse_landmark_row(row, path)
    has_variation = parsed.variation_type is not None
    if layout is None:
      layout = (has_variation, row.line)
    elif has_variation != layout[0]:
      raise formats.AnnotationError(
          path, row.line, f"this row {'has' if has_variation else 'lacks'} a variation_type "
          f"column but line {layout[1]} {'does not' if has_variation else 'does'}")
    return parsed

  return read_per_image(path, partition_path, partition, parse)


def landmark_columns(names: list[str], rows: dict[str, LandmarkRow]) -> dict[str, np.ndarray]:
  """Schema columns for `names` in order: landmarks [N, 8, 2], visibility [N, 8], type [N]."""
  return {
      "landmarks": np.stack([rows[n].landmarks for n in names]).reshape(-1, NUM_SLOTS, 2),
      "landmarks_visibility": np.stack([rows[n].visibility for n in names]).reshape(-1, NUM_SLOTS),
      "clothes_type": np.asarray([rows[n].clothes_type for n in names], np.int32),
  }


def variation_note(rows: dict[str, LandmarkRow]) -> str:
  counts = collections.Counter(r.variation_type for r in rows.values())
  if None in counts:
    return "landmark rows carry no variation_type column"
  shown = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
  return f"variation_type counts (not stored: the schema has no field for it): {shown}"


def split_names(partition: dict) -> dict[str, list[str]]:
  """Image names per split in partition order; splits without images are left out."""
  names = {split: [] for split in SPLITS}
  for name, (_, split) in partition.items():
    names[split].append(name)
  return {split: members for split, members in names.items() if members}


def image_paths(image_base: Path, names: list[str]) -> list[Path]:
  return [image_base / name for name in names]
