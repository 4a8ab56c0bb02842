"""Shop/street image pairs for MTCT in a documented CSV layout (the X-Domain data is not public).

Layout of the manual directory (docs/datasets.md):
  train.csv, val.csv (optional), test.csv (optional)   one per split; no other CSV files
  any image files, referred to by path relative to the manual directory
Columns, in this order: `image,domain,item_id`, then optionally `category`, then optionally
`x1,y1,x2,y2` (a bbox in pixels), then one column per attribute named `<group>/<attribute>`.
  domain: shop or street;  item_id: integer >= 0 shared by the images of one garment;
  category: a name, empty when unknown (names are sorted to give category indices);
  bbox: four numbers, or four empty cells;  attributes: 1 positive, 0 negative, -1 or empty
  unknown. Every split file has the same header.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tensorflow_datasets as tfds

from fashion_jax.data import formats, manual_builder, schema

SPLITS = ("train", "val", "test")
REQUIRED = ("image", "domain", "item_id")
BBOX = ("x1", "y1", "x2", "y2")
ATTRIBUTE_VALUES = {"1": 1, "0": 0, "-1": -1, "": -1}
FIELDS = ("domain", "item_id", "category", "bbox", "has_bbox", "attributes")

_INSTRUCTIONS = __doc__.split("\n", 2)[2] + """
Then: python -m fashion_jax.data.prepare --dataset=shop_street --manual_dir=DIR --data_dir=DIR
(the config, `csv_<N>attr`, is chosen from the number of attribute columns).
"""


@dataclasses.dataclass(eq=False)
class ShopStreetConfig(tfds.core.BuilderConfig):
  num_attributes: int = 0


@dataclasses.dataclass(frozen=True)
class Header:
  columns: tuple[str, ...]
  has_category: bool
  has_bbox: bool
  attributes: tuple[tuple[str, str], ...]  # (group, attribute) per attribute column


def parse_header(columns: list[str], path) -> Header:
  formats.check_csv_header(columns, path, REQUIRED)
  rest = list(columns[len(REQUIRED):])
  has_category = bool(rest) and rest[0] == "category"
  rest = rest[has_category:]
  has_bbox = tuple(rest[:len(BBOX)]) == BBOX
  rest = rest[len(BBOX) * has_bbox:]
  attributes = []
  for column in rest:
    group, slash, attribute = column.partition("/")
    if not (slash and group and attribute):
      raise formats.AnnotationError(
          path, 1, f"column {column!r}: expected <group>/<attribute> (columns {REQUIRED}, "
          f"category and {','.join(BBOX)} come first, in that order)")
    attributes.append((group, attribute))
  if len(set(attributes)) != len(attributes):
    raise formats.AnnotationError(path, 1, "an attribute column is repeated")
  return Header(tuple(columns), has_category, has_bbox, tuple(attributes))


def _parse_row(row: list[str], line: int, path, header: Header) -> dict:
  if len(row) != len(header.columns):
    raise formats.AnnotationError(
        path, line, f"expected {len(header.columns)} columns, found {len(row)}")
  image, domain, item_id = row[:3]
  if not image:
    raise formats.AnnotationError(path, line, "empty image path")
  if domain not in schema.DOMAINS:
    raise formats.AnnotationError(path, line, f"domain {domain!r} is not one of {schema.DOMAINS}")
  (item,) = formats.to_ints([item_id], path, line, "item_id")
  if item < 0:
    raise formats.AnnotationError(path, line, f"item_id {item} is negative")
  parsed = {"image": image, "domain": schema.DOMAINS.index(domain), "item_id": item}
  rest = row[3:]
  if header.has_category:
    parsed["category_name"], rest = rest[0], rest[1:]
  if header.has_bbox:
    cells, rest = rest[:len(BBOX)], rest[len(BBOX):]
    if any(cells):
      parsed["bbox"] = formats.to_box(cells, path, line)
  attributes = []
  for (group, attribute), cell in zip(header.attributes, rest, strict=True):
    if cell.strip() not in ATTRIBUTE_VALUES:
      raise formats.AnnotationError(
          path, line, f"{group}/{attribute}: {cell!r} is not 1, 0, -1 or empty")
    attributes.append(ATTRIBUTE_VALUES[cell.strip()])
  parsed["attributes"] = attributes
  return parsed


def read_shop_street(root: Path, num_attributes: int) -> manual_builder.Plan:
  csv_files = sorted(root.glob("*.csv"))
  for path in csv_files:
    if path.stem not in SPLITS:
      raise formats.AnnotationError(
          path, None, f"unknown split name {path.stem!r}; split files are "
          f"{', '.join(s + '.csv' for s in SPLITS)}")
  if not (root / "train.csv").is_file():
    raise FileNotFoundError(f"annotation file not found: {root / 'train.csv'}")
  header, parsed, seen = None, {}, {}
  for split in [s for s in SPLITS if (root / f"{s}.csv").is_file()]:
    path = root / f"{split}.csv"
    records = formats.read_csv_records(path)
    if header is None:
      header = parse_header(records[0][1], path)
      if len(header.attributes) != num_attributes:
        raise formats.AnnotationError(
            path, 1, f"has {len(header.attributes)} attribute columns but this config expects "
            f"{num_attributes}; use config "
            f"{manual_builder.counted_config_name('csv', len(header.attributes))!r}")
    elif tuple(records[0][1]) != header.columns:
      raise formats.AnnotationError(path, records[0][0], "header differs from train.csv")
    if len(records) == 1:
      raise formats.AnnotationError(path, records[0][0], "a header and no rows: the split "
                                    "would be empty (remove the file to have no such split)")
    parsed[split] = []
    for line, row in records[1:]:
      item = _parse_row(row, line, path, header)
      if item["image"] in seen:
        raise formats.AnnotationError(path, line, f"{item['image']} is already listed at "
                                      f"{seen[item['image']]}")
      seen[item["image"]] = f"{path.name}:{line}"
      parsed[split].append(item)
  categories = sorted({p.get("category_name", "") for rows in parsed.values() for p in rows}
                      - {""})
  category_index = {name: index for index, name in enumerate(categories)}
  splits = {}
  for split, rows in parsed.items():
    if not rows:
      continue
    fields = manual_builder.empty_fields(len(rows), num_attributes, FIELDS)
    for i, item in enumerate(rows):
      fields["domain"][i], fields["item_id"][i] = item["domain"], item["item_id"]
      fields["attributes"][i] = item["attributes"]
      if item.get("category_name"):
        fields["category"][i] = category_index[item["category_name"]]
      if "bbox" in item:
        fields["bbox"][i], fields["has_bbox"][i] = item["bbox"], True
    names = [item["image"] for item in rows]
    splits[split] = manual_builder.SplitTable(names, [root / n for n in names], fields)
  groups = list(dict.fromkeys(g for g, _ in header.attributes))
  labels = ("domain", "item_id", *(("category",) if header.has_category else ()),
            *(("bbox",) if header.has_bbox else ()),
            *(("attributes",) if header.attributes else ()))
  spec = schema.DatasetSpec(
      category_names=tuple(categories), attribute_names=tuple(a for _, a in header.attributes),
      attribute_groups=tuple(groups.index(g) for g, _ in header.attributes),
      attribute_group_names=tuple(groups), labels=labels)
  return manual_builder.Plan(spec=spec, splits=splits)


class ShopStreet(manual_builder.ManualBuilder):
  """Shop and street images of the same garments with grouped attributes (MTCT)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  LAYOUT_MARKERS = ("train.csv",)
  CONFIG_FROM_FILES = True  # csv_<N>attr; a run without data.builder_config takes the prepared one

  @classmethod
  def config_from_name(cls, name: str):
    parsed = manual_builder.parse_counted_config_name(name)
    if parsed is None or parsed[0] != "csv":
      raise ValueError(f"shop_street config {name!r}: expected csv_<N>attr, N = the number of "
                       "attribute columns")
    return ShopStreetConfig(name=name, num_attributes=parsed[1],
                            description=f"CSV layout with {parsed[1]} attribute columns")

  @classmethod
  def config_for_manual_dir(cls, manual_dir, requested: str | None):
    if requested is not None:
      return requested
    path = Path(manual_dir) / "train.csv"
    header = parse_header(formats.read_csv_records(path)[0][1], path)
    return manual_builder.counted_config_name("csv", len(header.attributes))

  def read_annotations(self, manual_dir: Path) -> manual_builder.Plan:
    return read_shop_street(Path(manual_dir), self.num_attributes)
