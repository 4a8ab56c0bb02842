"""Helpers for the real-dataset tests: tiny images and byte-exact annotation files.

Imported by name from the tests (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import dataclasses
import io
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from fashion_jax.data import schema


def write_text(path: Path, text: str) -> Path:
  """Writes `text` (dedented, so fixtures can be indented in the test) byte for byte."""
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(textwrap.dedent(text).encode())
  return path


def jpeg_bytes(seed: int, size: int = 320) -> bytes:
  """A size x size JPEG of 10-pixel random blocks: large enough to hold the fixtures'
  annotations (preparation refuses boxes and points outside their image), small on disk."""
  rng = np.random.default_rng(seed)
  blocks = rng.integers(0, 256, (-(-size // 10), -(-size // 10), 3), dtype=np.uint8)
  pixels = np.repeat(np.repeat(blocks, 10, axis=0), 10, axis=1)[:size, :size]
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
  return buffer.getvalue()


def write_jpeg(path: Path, seed: int = 0) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(jpeg_bytes(seed))
  return path


def write_images(root: Path, names, seed: int = 0) -> list[Path]:
  return [write_jpeg(root / name, seed + i) for i, name in enumerate(names)]


def truncate(path: Path) -> Path:
  """Cuts a JPEG in half, as an interrupted download or unzip leaves it."""
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  return path


def decoded(path: Path) -> np.ndarray:
  with Image.open(path) as image:
    return np.asarray(image.convert("RGB"))


# =============================================================================================
# Whole small datasets in the published on-disk formats (docs/datasets.md), big enough to train
# a few steps at batch size 4 and to evaluate. Every writer is deterministic given `seed`; images
# are random-content JPEGs of 48..96 pixels a side; coordinates are integer pixels inside the
# image unless a visibility code says truncated.

MIN_SIDE, MAX_SIDE = 48, 96
_NAME_WIDTH = 64  # column the value cells of DeepFashion's per-image lists start at
_TYPE_WIDTH = 29  # column of the type in list_category_cloth.txt and list_attr_cloth.txt


def write_random_jpeg(path: Path, rng: np.random.Generator) -> tuple[int, int]:
  """Writes a random-content RGB JPEG of a random size (48..96 px a side); returns (w, h)."""
  width, height = (int(s) for s in rng.integers(MIN_SIDE, MAX_SIDE + 1, 2))
  pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(buffer.getvalue())
  return width, height


def _write_lines(path: Path, lines) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes("".join(f"{line}\n" for line in lines).encode())
  return path


def _write_listing(path: Path, header: str, rows) -> Path:
  """A DeepFashion `list_*.txt`: the count line, the column-name line, then each row's image
  name padded to a fixed column and its cells."""
  rows = list(rows)
  width = max([_NAME_WIDTH] + [len(name) + 1 for name, _ in rows])
  return _write_lines(path, [str(len(rows)), header]
                      + [f"{name:<{width}}{cells}" for name, cells in rows])


def _write_name_type_list(path: Path, first_column: str, names, types) -> Path:
  """`list_category_cloth.txt` / `list_attr_cloth.txt`: names padded to column 29, then the
  1-based type."""
  rows = [f"{name:<{max(_TYPE_WIDTH, len(name) + 1)}}{kind}"
          for name, kind in zip(names, types, strict=True)]
  header = f"{first_column}  {first_column.replace('_name', '_type')}"
  return _write_lines(path, [str(len(rows)), header] + rows)


def _cover(rng: np.random.Generator, values, n: int) -> list:
  """`n` draws from `values` that hold every value once when n >= len(values), shuffled."""
  values = list(values)
  draws = values[:n] + [values[i] for i in rng.integers(0, len(values), max(0, n - len(values)))]
  return [draws[i] for i in rng.permutation(n)]


def _counts(n: int, weights) -> list[int]:
  """`n` split in proportion to `weights` (largest remainders), each part at least 1."""
  weights = np.asarray(weights, float)
  if n < len(weights):
    raise ValueError(f"need at least {len(weights)} to give every part one, got {n}")
  extra = (n - len(weights)) * weights / weights.sum()
  counts = 1 + np.floor(extra).astype(int)
  for i in np.argsort(-(extra - np.floor(extra)), kind="stable")[:n - counts.sum()]:
    counts[i] += 1
  return counts.tolist()


# ---- DeepFashion Category & Attribute Prediction --------------------------------------------
# The 50 published category names (list_category_cloth.txt order) and their types (1 upper,
# 2 lower, 3 full body).
DEEPFASHION_CATEGORIES = tuple(
    "Anorak Blazer Blouse Bomber Button-Down Cardigan Flannel Halter Henley Hoodie Jacket Jersey "
    "Parka Peacoat Poncho Sweater Tank Tee Top Turtleneck Capris Chinos Culottes Cutoffs Gauchos "
    "Jeans Jeggings Jodhpurs Joggers Leggings Sarong Shorts Skirt Sweatpants Sweatshorts Trunks "
    "Caftan Cape Coat Coverup Dress Jumpsuit Kaftan Kimono Nightdress Onesie Robe Romper "
    "Shirtdress Sundress".split())
DEEPFASHION_CATEGORY_TYPES = tuple(1 if i < 20 else 2 if i < 36 else 3 for i in range(50))
# 1-based ids of the four full-body categories merged into Dress: listed, but no image has them.
DEEPFASHION_EMPTY_CATEGORY_IDS = (38, 45, 49, 50)  # Cape, Nightdress, Shirtdress, Sundress
_CATEGORY_IDS_BY_TYPE = {
    kind: tuple(i + 1 for i, t in enumerate(DEEPFASHION_CATEGORY_TYPES)
                if t == kind and i + 1 not in DEEPFASHION_EMPTY_CATEGORY_IDS)
    for kind in (1, 2, 3)}
# Attributes per type (texture, fabric, shape, part, style) in the published 1000.
DEEPFASHION_ATTRIBUTE_TYPE_COUNTS = (156, 218, 180, 216, 230)
_ATTRIBUTE_WORDS = (
    "a-line abstract animal beaded boho button chevron chiffon collar cotton crochet cropped "
    "cutout denim dolman embroidered floral fringe knit lace leather linen maxi mesh midi mini "
    "paisley plaid pleated pocket print ruffle satin sheer slit striped tie velvet v-neck "
    "wrap").split()
_ITEM_WORDS = (
    "Sheer Pleated-Front Classic Denim Floral Maxi Striped Cropped Lace Knit Boxy Faux Leather "
    "Abstract Print Ribbed Sleeveless Hooded Relaxed Slim").split()
LANDMARK_HEADER = "image_name  clothes_type  variation_type  " + "  ".join(
    f"landmark_visibility_{i}  landmark_location_x_{i}  landmark_location_y_{i}"
    for i in range(1, 9))
# Landmark templates in the published point order per clothes type, as fractions of the bbox.
_LANDMARK_TEMPLATES = {
    1: ((0.38, 0.05), (0.62, 0.05), (0.08, 0.55), (0.92, 0.55), (0.2, 0.95), (0.8, 0.95)),
    2: ((0.2, 0.05), (0.8, 0.05), (0.15, 0.95), (0.85, 0.95)),
    3: ((0.4, 0.04), (0.6, 0.04), (0.1, 0.3), (0.9, 0.3), (0.25, 0.45), (0.75, 0.45),
        (0.15, 0.96), (0.85, 0.96)),
}
# Anno_fine: 26 attributes in 6 groups (texture, sleeve, length, neckline, fabric, fit).
DEEPFASHION_FINE_ATTRIBUTES = (
    "floral graphic striped embroidered pleated solid lattice long_sleeve short_sleeve sleeveless "
    "maxi_length mini_length no_dress crew_neckline v_neckline square_neckline no_neckline denim "
    "chiffon cotton leather faux knit tight loose conventional").split()
DEEPFASHION_FINE_GROUPS = (1,) * 7 + (2,) * 3 + (3,) * 3 + (4,) * 4 + (5,) * 6 + (6,) * 3
_DEFAULT_SPLITS = (("train", 8), ("val", 4), ("test", 4))


@dataclasses.dataclass
class _Garment:
  """One DeepFashion image: `points` are (visibility 0/1/2, x, y) in the published order."""

  name: str
  split: str
  category: int  # 1-based id
  clothes_type: int  # 1 upper, 2 lower, 3 full
  bbox: tuple[int, int, int, int]
  points: list[tuple[int, int, int]]


def _deepfashion_garments(root: Path, split_sizes, rng: np.random.Generator,
                          truncate: bool) -> list[_Garment]:
  """Draws the images of every split (every clothes type in each split of >= 3 images), writes
  them under `root/img/<Item_Name>/img_XXXXXXXX.jpg` (numbered per item folder) and returns
  their annotations in file order (grouped by item folder, splits interleaved)."""
  # A few categories per type, so that item folders often hold several images.
  pools = {kind: rng.choice(ids, 3, replace=False) for kind, ids in _CATEGORY_IDS_BY_TYPE.items()}
  drawn = [(split, int(rng.choice(pools[kind])))
           for split, size in split_sizes for kind in _cover(rng, (1, 2, 3), size)]
  drawn = [drawn[i] for i in rng.permutation(len(drawn))]
  drawn.sort(key=lambda d: d[1])  # an item folder holds images of one category
  garments, folders, folder, number = [], set(), None, 0
  for index, (split, category) in enumerate(drawn):
    if folder is None or category != garments[-1].category or rng.random() < 0.4:
      while folder is None or folder in folders:
        words = rng.choice(_ITEM_WORDS, 2, replace=False)
        folder = f"{words[0]}_{words[1]}_{DEEPFASHION_CATEGORIES[category - 1]}"
      folders.add(folder)
      number = 0
    number += 1
    name = f"img/{folder}/img_{number:08d}.jpg"
    width, height = write_random_jpeg(root / name, rng)
    x1, y1 = (int(rng.integers(1, max(2, s // 5))) for s in (width, height))
    x2, y2 = (int(rng.integers(s - s // 5, s)) for s in (width, height))
    kind = DEEPFASHION_CATEGORY_TYPES[category - 1]
    template = _LANDMARK_TEMPLATES[kind]
    points = []
    for point, (fx, fy) in enumerate(template):
      x = int(np.clip(round(x1 + (fx + rng.uniform(-0.05, 0.05)) * (x2 - x1)), x1, x2))
      y = int(np.clip(round(y1 + (fy + rng.uniform(-0.05, 0.05)) * (y2 - y1)), y1, y2))
      hem = point >= len(template) - 2
      u = rng.random()
      if point < 2:  # collars (waistline for lower body): always visible, inside the bbox
        code = 0
      elif (index == 0 and point == 2) or u < 0.12:
        code = 1  # occluded: annotated where it is, inside the bbox
      elif truncate and hem and ((index == 1 and point == len(template) - 1) or u < 0.22):
        code, y = 2, height + int(rng.integers(0, 8))  # cut off by the bottom of the frame
      else:
        code = 0
      points.append((code, x, y))
    garments.append(_Garment(name, split, category, kind, (x1, y1, x2, y2), points))
  return garments


def _attribute_names(rng: np.random.Generator, n: int) -> list[str]:
  """`n` distinct lower-case attribute names in alphabetical order, about half with a space."""
  words = _ATTRIBUTE_WORDS
  pairs = [f"{a} {b}" for a in words for b in words if a != b]
  singles = min(len(words), n // 2)
  if n - singles > len(pairs):
    raise ValueError(f"at most {len(words) + len(pairs)} attribute names, asked for {n}")
  chosen = [words[i] for i in rng.choice(len(words), singles, replace=False)]
  chosen += [pairs[i] for i in rng.choice(len(pairs), n - singles, replace=False)]
  return sorted(chosen)


def write_deepfashion_coarse(root, split_sizes=_DEFAULT_SPLITS, num_attributes: int = 1000,
                             seed: int = 0) -> Path:
  """DeepFashion Category & Attribute Prediction in the first release's layout.

  Writes under `root`:
    img/<Item_Name>/img_XXXXXXXX.jpg  numbered per item folder; an item is one category, three
                                      categories of each clothes type are drawn.
    Anno/list_category_cloth.txt      the 50 published category names, types 1/2/3.
    Anno/list_category_img.txt        1-based category ids; only ids that carry images in the
                                      real data (not the 4 merged into Dress, see
                                      DEEPFASHION_EMPTY_CATEGORY_IDS).
    Anno/list_attr_cloth.txt          `num_attributes` (>= 5) alphabetical names, many with a
                                      single space, types 1..5 in the published proportions.
    Anno/list_attr_img.txt            1 / -1 / 0 per attribute, values right-aligned in 2 chars:
                                      1-2 positives of every type per image, ~2% unknown (0).
    Anno/list_bbox.txt                zero-padded `x_1 y_1 x_2 y_2` inside the image, at least
                                      3/5 of each side.
    Anno/list_landmarks.txt           header naming variation_type, rows without it (as
                                      published): clothes_type (consistent with the category)
                                      and 6/4/8 `v x y` triples. The first two points are visible
                                      (0) inside the bbox; others are visible, occluded (1, inside
                                      the bbox) or, for hems, truncated (2, below the image).
                                      The first image in file order has an occluded point, the
                                      second a truncated one.
    Eval/list_eval_partition.txt      `split_sizes` images per split; a split of >= 3 images has
                                      every clothes type.
  Every list starts with the count line and the column-name line; image names are padded to
  column 64. Returns `root`.
  """
  root = Path(root)
  rng = np.random.default_rng(seed)
  garments = _deepfashion_garments(root, split_sizes, rng, truncate=True)
  anno = root / "Anno"
  _write_name_type_list(anno / "list_category_cloth.txt", "category_name",
                        DEEPFASHION_CATEGORIES, DEEPFASHION_CATEGORY_TYPES)
  names = _attribute_names(rng, num_attributes)
  types = np.repeat(np.arange(1, 6), _counts(num_attributes, DEEPFASHION_ATTRIBUTE_TYPE_COUNTS))
  types = types[rng.permutation(num_attributes)]
  _write_name_type_list(anno / "list_attr_cloth.txt", "attribute_name", names, types.tolist())
  _write_listing(anno / "list_category_img.txt", "image_name  category_label",
                 [(g.name, str(g.category)) for g in garments])
  rows = []
  for g in garments:
    values = np.full(num_attributes, -1)
    values[rng.choice(num_attributes, num_attributes // 50 + 1, replace=False)] = 0
    for kind in range(1, 6):
      members = np.flatnonzero(types == kind)
      values[rng.choice(members, min(len(members), int(rng.integers(1, 3))), replace=False)] = 1
    rows.append((g.name, " ".join(f"{v:>2}" for v in values)))
  _write_listing(anno / "list_attr_img.txt", "image_name  attribute_labels", rows)
  _write_listing(anno / "list_bbox.txt", "image_name  x_1  y_1  x_2  y_2",
                 [(g.name, " ".join(f"{c:03d}" for c in g.bbox)) for g in garments])
  _write_listing(anno / "list_landmarks.txt", LANDMARK_HEADER, [
      (g.name, f"{g.clothes_type}  " + "  ".join(f"{v} {x:03d} {y:03d}" for v, x, y in g.points))
      for g in garments])
  _write_listing(root / "Eval" / "list_eval_partition.txt", "image_name  evaluation_status",
                 [(g.name, g.split) for g in garments])
  return root


def write_deepfashion_fine(root, split_sizes=_DEFAULT_SPLITS, seed: int = 0) -> Path:
  """DeepFashion Category & Attribute Prediction with the later `Anno_fine/` annotations.

  Writes under `root`:
    img/<Item_Name>/img_XXXXXXXX.jpg   as `write_deepfashion_coarse` (every clothes type in each
                                       split of >= 3 images).
    Anno_fine/list_category_cloth.txt  the 50 published categories (count and header lines).
    Anno_fine/list_attr_cloth.txt      the 26 published attributes, types 1..6 (texture, sleeve,
                                       length, neckline, fabric, fit).
    Anno_fine/{split}.txt              image names, one a line (no count or header line), for
                                       each split with images; the files below are aligned with
                                       it line by line.
    Anno_fine/{split}_attr.txt         26 values 0/1, exactly one 1 per group.
    Anno_fine/{split}_cate.txt         the 1-based category id.
    Anno_fine/{split}_bbox.txt         `x1 y1 x2 y2` inside the image, x1, y1 >= 1.
    Anno_fine/{split}_landmarks.txt    16 numbers: 8 (x, y) pairs in the full-body slot order,
                                       `0 0` for slots the clothes type lacks; every other point
                                       lies inside the bbox (so never at (0, 0)).
  Returns `root`.
  """
  root = Path(root)
  rng = np.random.default_rng(seed)
  garments = _deepfashion_garments(root, split_sizes, rng, truncate=False)
  fine = root / "Anno_fine"
  _write_name_type_list(fine / "list_category_cloth.txt", "category_name",
                        DEEPFASHION_CATEGORIES, DEEPFASHION_CATEGORY_TYPES)
  _write_name_type_list(fine / "list_attr_cloth.txt", "attribute_name",
                        DEEPFASHION_FINE_ATTRIBUTES, DEEPFASHION_FINE_GROUPS)
  groups = np.asarray(DEEPFASHION_FINE_GROUPS)
  index = {name: i for i, name in enumerate(DEEPFASHION_FINE_ATTRIBUTES)}
  for split in dict.fromkeys(split for split, _ in split_sizes):
    members = [g for g in garments if g.split == split]
    if not members:
      continue
    attrs, landmarks = [], []
    for g in members:
      values = np.zeros(len(groups), int)
      for group in range(1, 7):
        values[rng.choice(np.flatnonzero(groups == group))] = 1
      if g.clothes_type != 3:  # only dresses have a dress length
        values[groups == 3] = 0
        values[index["no_dress"]] = 1
      if g.clothes_type == 2:  # a lower-body garment has no neckline
        values[groups == 4] = 0
        values[index["no_neckline"]] = 1
      attrs.append(" ".join(str(v) for v in values))
      pairs = np.zeros((8, 2), int)
      for slot, (_, x, y) in zip(schema.CLOTHES_TYPE_SLOTS[g.clothes_type - 1], g.points,
                                 strict=True):
        pairs[slot] = x, y
      landmarks.append(" ".join(str(v) for v in pairs.ravel()))
    _write_lines(fine / f"{split}.txt", [g.name for g in members])
    _write_lines(fine / f"{split}_attr.txt", attrs)
    _write_lines(fine / f"{split}_cate.txt", [str(g.category) for g in members])
    _write_lines(fine / f"{split}_bbox.txt", [" ".join(map(str, g.bbox)) for g in members])
    _write_lines(fine / f"{split}_landmarks.txt", landmarks)
  return root
