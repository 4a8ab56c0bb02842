"""Writes examples of the shared schema in the published on-disk formats of the real datasets.

This lets the real builders be tested end to end, and lets a user try the real-data path with
the synthetic renders (`tools/export_synth.py`). Input: an iterable of example dicts with the keys
of `schema.empty_example` plus `image` (uint8 [H, W, 3] RGB) and `image_id` (str), and the
`DatasetSpec` their labels index. What a format cannot hold is refused with a ValueError, except
two documented conversions: coordinates are rounded to integers where the format has integers,
and FashionAI (no truncated code) gets truncated keypoints as v=0 (read back as OCCLUDED).
"""

from __future__ import annotations

import collections
import csv
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from fashion_jax.data import schema
from fashion_jax.data.deepfashion_attributes.deepfashion_attributes import COARSE_ATTRIBUTE_TYPES

FORMATS = ("deepfashion_attributes", "deepfashion_landmarks", "fashionai", "dcsa", "shop_street")
# Schema visibility -> published codes.
DEEPFASHION_VISIBILITY = {schema.VISIBLE: 0, schema.OCCLUDED: 1, schema.TRUNCATED: 2}
FASHIONAI_VISIBILITY = {schema.VISIBLE: 1, schema.OCCLUDED: 0, schema.TRUNCATED: 0}
DEEPFASHION_ATTRIBUTES = {1: 1, 0: -1, -1: 0}  # schema -> published (1, -1, 0)
JPEG_QUALITY = 95
FULL_BODY_TYPE = 3  # written for a category none of the exported examples shows
FLD_VARIATION = 1  # "normal pose": the renderer does not report a variation type

_SPLIT_BY_ITEM = ("train",) * 8 + ("val", "test")


def split_by_item(example) -> str:
  """Default split: by item id (views of one garment stay together), 80/10/10."""
  return _SPLIT_BY_ITEM[int(example["item_id"]) % len(_SPLIT_BY_ITEM)]


def _write_jpeg(path: Path, image: np.ndarray) -> None:
  from PIL import Image

  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"{path.name}: image must be uint8 [H, W, 3], got {image.dtype} "
                     f"{image.shape}")
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY)


def _write_listing(path: Path, columns: str, rows: list[tuple]) -> None:
  """A DeepFashion list file: count line, column-name line, rows aligned by padding."""
  width = max((len(str(r[0])) for r in rows), default=0) + 2
  lines = [str(len(rows)), columns]
  lines += [str(r[0]).ljust(width) + " ".join(str(c).rjust(2) for c in r[1:]) for r in rows]
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join(lines) + "\n")


def _pixel(value) -> str:
  return f"{round(float(value)):03d}"


def _landmark_cells(example, pad_to_all_slots: bool) -> list:
  """clothes_type then (v, x, y) for the slots of that type (DeepFashion order)."""
  clothes_type = int(example["clothes_type"])
  if clothes_type not in schema.CLOTHES_TYPE_SLOTS:
    raise ValueError(f"{example['image_id']}: clothes_type {clothes_type} cannot be exported")
  slots = schema.CLOTHES_TYPE_SLOTS[clothes_type]
  cells = [clothes_type + 1]
  for slot in slots:
    code = int(example["landmarks_visibility"][slot])
    if code not in DEEPFASHION_VISIBILITY:
      raise ValueError(f"{example['image_id']}: landmark {schema.LANDMARK_NAMES[slot]} has "
                       f"visibility {code}, which a {schema.CLOTHES_TYPES[clothes_type]} garment "
                       "row cannot hold")
    x, y = example["landmarks"][slot]
    cells += [DEEPFASHION_VISIBILITY[code], _pixel(x), _pixel(y)]
  if pad_to_all_slots:
    cells += [0, "000", "000"] * (len(schema.LANDMARK_NAMES) - len(slots))
  return cells


def _bbox_cells(example) -> list[str]:
  if not example["has_bbox"]:
    raise ValueError(f"{example['image_id']}: no bbox, which DeepFashion requires")
  return [_pixel(v) for v in example["bbox"]]


def _require(example, field: str, fmt: str) -> int:
  value = int(example[field])
  if value < 0:
    raise ValueError(f"{example['image_id']}: {field} is missing, which {fmt} requires")
  return value


def write_deepfashion_attributes(examples, spec: schema.DatasetSpec, out: Path, split_of):
  """Category & Attribute (coarse) in the later release's layout: Img/img/, Anno_coarse/."""
  unknown = set(spec.attribute_group_names) - set(COARSE_ATTRIBUTE_TYPES)
  if unknown:
    raise ValueError(f"attribute groups {sorted(unknown)} are not DeepFashion attribute types "
                     f"{COARSE_ATTRIBUTE_TYPES}")
  rows = collections.defaultdict(list)
  types = collections.defaultdict(collections.Counter)
  for index, example in enumerate(examples):
    category = _require(example, "category", "DeepFashion")
    folder = spec.category_names[category].replace(" ", "_")
    name = f"img/{folder}_item{int(example['item_id']):06d}/img_{index + 1:08d}.jpg"
    _write_jpeg(out / "Img" / name, example["image"])
    landmarks = _landmark_cells(example, pad_to_all_slots=False)
    types[category][landmarks[0]] += 1
    rows["category"].append((name, category + 1))
    rows["attr"].append((name, *(DEEPFASHION_ATTRIBUTES[int(a)] for a in example["attributes"])))
    rows["bbox"].append((name, *_bbox_cells(example)))
    rows["landmarks"].append((name, *landmarks))
    rows["partition"].append((name, split_of(example)))
  anno = out / "Anno_coarse"
  category_types = [types[i].most_common(1)[0][0] if types[i] else FULL_BODY_TYPE
                    for i in range(spec.num_categories)]
  _write_listing(anno / "list_category_cloth.txt", "category_name  category_type",
                 list(zip(spec.category_names, category_types, strict=True)))
  attribute_types = [COARSE_ATTRIBUTE_TYPES.index(spec.attribute_group_names[g]) + 1
                     for g in spec.attribute_groups]
  _write_listing(anno / "list_attr_cloth.txt", "attribute_name  attribute_type",
                 list(zip(spec.attribute_names, attribute_types, strict=True)))
  _write_listing(anno / "list_category_img.txt", "image_name  category_label", rows["category"])
  _write_listing(anno / "list_attr_img.txt", "image_name  attribute_labels", rows["attr"])
  _write_listing(anno / "list_bbox.txt", "image_name  x_1  y_1  x_2  y_2", rows["bbox"])
  _write_listing(anno / "list_landmarks.txt", _LANDMARK_COLUMNS, rows["landmarks"])
  return _write_partition(out, rows["partition"])


_LANDMARK_COLUMNS = "image_name  clothes_type  variation_type  " + "  ".join(
    f"landmark_visibility_{i} landmark_location_x_{i} landmark_location_y_{i}"
    for i in range(1, len(schema.LANDMARK_NAMES) + 1))


def _write_partition(out: Path, rows: list[tuple]) -> dict[str, int]:
  _write_listing(out / "Eval" / "list_eval_partition.txt", "image_name  evaluation_status", rows)
  return dict(collections.Counter(split for _, split in rows))


def write_deepfashion_landmarks(examples, spec: schema.DatasetSpec, out: Path, split_of):
  """FLD: img/img_XXXXXXXX.jpg, rows with variation_type padded with zero triples to 8."""
  del spec  # FLD has no categories or attributes
  rows = collections.defaultdict(list)
  for index, example in enumerate(examples):
    name = f"img/img_{index + 1:08d}.jpg"
    _write_jpeg(out / name, example["image"])
    cells = _landmark_cells(example, pad_to_all_slots=True)
    rows["landmarks"].append((name, cells[0], FLD_VARIATION, *cells[1:]))
    rows["bbox"].append((name, *_bbox_cells(example)))
    rows["partition"].append((name, split_of(example)))
  _write_listing(out / "Anno" / "list_bbox.txt", "image_name  x_1  y_1  x_2  y_2", rows["bbox"])
  _write_listing(out / "Anno" / "list_landmarks.txt", _LANDMARK_COLUMNS, rows["landmarks"])
  return _write_partition(out, rows["partition"])


def write_fashionai(examples, spec: schema.DatasetSpec, out: Path, split_of):
  """FashionAI: <split>/Images/<category>/<id>.jpg and <split>/Annotations/<split>.csv."""
  del spec
  rows = collections.defaultdict(list)
  for index, example in enumerate(examples):
    category = schema.FASHIONAI_CATEGORIES[_require(example, "fashionai_category", "FashionAI")]
    split = split_of(example)
    image_id = f"Images/{category}/{index:08d}.jpg"
    _write_jpeg(out / split / image_id, example["image"])
    cells = []
    for (x, y), code in zip(example["keypoints"], example["keypoints_visibility"], strict=True):
      code = int(code)
      cells.append("-1_-1_-1" if code == schema.ABSENT else
                   f"{round(float(x))}_{round(float(y))}_{FASHIONAI_VISIBILITY[code]}")
    rows[split].append([image_id, category, *cells])
  for split, split_rows in rows.items():
    path = out / split / "Annotations" / f"{split}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
      csv.writer(f, lineterminator="\n").writerows(
          [["image_id", "image_category", *schema.KEYPOINT_NAMES], *split_rows])
  return {split: len(split_rows) for split, split_rows in rows.items()}


def write_dcsa(examples, spec: schema.DatasetSpec, out: Path, split_of):
  """DCSA: images/NNNNNN.jpg and labels/<label>_GT.mat (binary 1/2, classes 1-based, NaN)."""
  del spec, split_of  # DCSA is one set; folds are made at training time
  from scipy.io import savemat

  labels = []
  for index, example in enumerate(examples):
    _write_jpeg(out / "images" / f"{index + 1:06d}.jpg", example["image"])
    labels.append(np.asarray(example["dcsa_labels"], np.float64))
  labels = np.stack(labels) if labels else np.zeros((0, len(schema.DCSA_LABELS)))
  (out / "labels").mkdir(parents=True, exist_ok=True)
  for column, label in enumerate(schema.DCSA_LABELS):
    values = labels[:, column] + 1.0  # binary 0/1 -> 1/2; classes 0-based -> 1-based
    values[labels[:, column] < 0] = np.nan
    savemat(out / "labels" / f"{label}_GT.mat", {"GT": values[:, None]})
  return {"train": len(labels)}


def write_shop_street(examples, spec: schema.DatasetSpec, out: Path, split_of):
  """The shop_street CSV layout (fashion_jax/data/shop_street): one CSV per split."""
  groups = [spec.attribute_group_names[g] for g in spec.attribute_groups]
  if any("/" in g for g in groups):
    raise ValueError("attribute group names must not contain '/' (the column separator)")
  header = ["image", "domain", "item_id", "category", "x1", "y1", "x2", "y2"]
  header += [f"{g}/{a}" for g, a in zip(groups, spec.attribute_names, strict=True)]
  rows = collections.defaultdict(list)
  for index, example in enumerate(examples):
    name = f"images/{index:08d}.jpg"
    _write_jpeg(out / name, example["image"])
    domain = schema.DOMAINS[_require(example, "domain", "shop_street")]
    category = int(example["category"])
    bbox = ([format(float(v), ".9g") for v in example["bbox"]] if example["has_bbox"]
            else [""] * 4)
    rows[split_of(example)].append(
        [name, domain, _require(example, "item_id", "shop_street"),
         spec.category_names[category] if category >= 0 else "", *bbox,
         *(int(a) for a in example["attributes"])])
  for split, split_rows in rows.items():
    with open(out / f"{split}.csv", "w", newline="") as f:
      csv.writer(f, lineterminator="\n").writerows([header, *split_rows])
  return {split: len(split_rows) for split, split_rows in rows.items()}


WRITERS = {
    "deepfashion_attributes": write_deepfashion_attributes,
    "deepfashion_landmarks": write_deepfashion_landmarks,
    "fashionai": write_fashionai,
    "dcsa": write_dcsa,
    "shop_street": write_shop_street,
}


def checked_examples(examples: Iterable[dict], spec: schema.DatasetSpec):
  """Adapts renderer (or hand-made) dicts: every schema field present, with the schema's shape."""
  reference = schema.empty_example(spec.num_attributes)
  for example in examples:
    missing = (set(reference) | {"image", "image_id"}) - set(example)
    if missing:
      raise ValueError(f"example {example.get('image_id')!r} lacks {sorted(missing)}")
    for field, empty in reference.items():
      if np.shape(example[field]) != np.shape(empty):
        raise ValueError(f"example {example['image_id']!r}: {field} has shape "
                         f"{np.shape(example[field])}, expected {np.shape(empty)}")
    yield example


def export(examples: Iterable[dict], spec: schema.DatasetSpec, fmt: str, out_dir,
           split_of: Callable[[dict], str] = split_by_item) -> dict[str, int]:
  """Writes `examples` under `out_dir` in format `fmt`; returns the number written per split."""
  if fmt not in WRITERS:
    raise ValueError(f"unknown format {fmt!r}; known: {FORMATS}")
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  return WRITERS[fmt](checked_examples(examples, spec), spec, out, split_of)
