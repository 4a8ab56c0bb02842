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
from fashion_jax.data.synth.spec import FASHIONAI_KEYPOINTS
from fashion_jax.metrics import FASHIONAI_NORMALISER


def write_text(path: Path, text: str) -> Path:
  """Writes `text` (dedented, so fixtures can be indented in the test) byte for byte."""
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(textwrap.dedent(text).encode())
  return path


def jpeg_bytes(seed: int, size: int = 32) -> bytes:
  rng = np.random.default_rng(seed)
  pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
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


# ---- FashionAI keypoints 2018 ----------------------------------------------------------------
# Where each of the 24 keypoints sits, as fractions of the image (x, y); jittered per image.
_FASHIONAI_TEMPLATE = {
    "neckline_left": (0.42, 0.12), "neckline_right": (0.58, 0.12), "center_front": (0.5, 0.2),
    "shoulder_left": (0.3, 0.18), "shoulder_right": (0.7, 0.18), "armpit_left": (0.32, 0.4),
    "armpit_right": (0.68, 0.4), "waistline_left": (0.34, 0.6), "waistline_right": (0.66, 0.6),
    "cuff_left_in": (0.15, 0.62), "cuff_left_out": (0.08, 0.6), "cuff_right_in": (0.85, 0.62),
    "cuff_right_out": (0.92, 0.6), "top_hem_left": (0.33, 0.85), "top_hem_right": (0.67, 0.85),
    "waistband_left": (0.3, 0.12), "waistband_right": (0.7, 0.12), "hemline_left": (0.22, 0.88),
    "hemline_right": (0.78, 0.88), "crotch": (0.5, 0.45), "bottom_left_in": (0.42, 0.9),
    "bottom_left_out": (0.3, 0.9), "bottom_right_in": (0.58, 0.9),
    "bottom_right_out": (0.7, 0.9),
}
FASHIONAI_HEADER = "image_id,image_category," + ",".join(schema.KEYPOINT_NAMES)
FASHIONAI_MIN_NORMALISER = 10  # pixels between the two normalising keypoints, at least


def _fashionai_split(split_dir: Path, csv_path: Path, num_images: int, rng: np.random.Generator,
                     annotated: bool) -> None:
  categories = _cover(rng, schema.FASHIONAI_CATEGORIES, num_images)
  rows = []
  for index, category in enumerate(categories):
    image_id = f"Images/{category}/{rng.bytes(16).hex()}.jpg"
    width, height = write_random_jpeg(split_dir / image_id, rng)
    if not annotated:
      rows.append(f"{image_id},{category}")
      continue
    present, pair = FASHIONAI_KEYPOINTS[category], FASHIONAI_NORMALISER[category]
    cells, coords = [], {}
    for name in schema.KEYPOINT_NAMES:
      if name not in present:
        cells.append("-1_-1_-1")
        continue
      fx, fy = _FASHIONAI_TEMPLATE[name]
      x = int(np.clip(round((fx + rng.uniform(-0.03, 0.03)) * width), 0, width - 1))
      y = int(np.clip(round((fy + rng.uniform(-0.03, 0.03)) * height), 0, height - 1))
      coords[name] = (x, y)
      occluded = rng.random() < 0.15 or (index == 0 and name == present[-1])
      occluded &= name not in pair  # the normalising pair stays visible
      cells.append(f"{x}_{y}_{0 if occluded else 1}")
    distance = np.hypot(*np.subtract(coords[pair[0]], coords[pair[1]]))
    if distance < FASHIONAI_MIN_NORMALISER:  # cannot happen with the templates above
      raise AssertionError(f"{image_id}: normalising pair {distance:.1f} px apart")
    rows.append(f"{image_id},{category}," + ",".join(cells))
  header = FASHIONAI_HEADER if annotated else "image_id,image_category"
  _write_lines(csv_path, [header] + rows)


def write_fashionai(root, num_train: int = 16, num_test: int = 4, seed: int = 0,
                    val: int = 0) -> Path:
  """FashionAI Global Challenge 2018 keypoints, split folders as unpacked.

  Writes under `root`:
    train/Images/<category>/<32 hex>.jpg and train/Annotations/train.csv: header
        `image_id,image_category,<24 keypoints>` in the published order; all five categories
        when num_train >= 5; cells `x_y_v` (v=1 visible, 0 occluded, about 15%) for the
        category's published keypoint set (`synth.spec.FASHIONAI_KEYPOINTS`), `-1_-1_-1` for the
        others. The normalising pair (`metrics.FASHIONAI_NORMALISER`: armpits for blouse,
        outwear, dress; waistband for skirt, trousers) is visible and at least 10 px apart.
        The first image has an occluded point.
    val/Images/... and val/Annotations/val.csv: the same layout, when `val` > 0.
    test/Images/... and test/test.csv: header `image_id,image_category` only, when num_test > 0.
  Returns `root`.
  """
  root = Path(root)
  rng = np.random.default_rng(seed)
  _fashionai_split(root / "train", root / "train" / "Annotations" / "train.csv", num_train, rng,
                   annotated=True)
  if val:
    _fashionai_split(root / "val", root / "val" / "Annotations" / "val.csv", val, rng,
                     annotated=True)
  if num_test:
    _fashionai_split(root / "test", root / "test" / "test.csv", num_test, rng, annotated=False)
  return root


# ---- Clothing Attributes Dataset (DCSA) ------------------------------------------------------
DCSA_FOLDER = "ClothingAttributeDataset"
_MAT_HEADER = "MATLAB 5.0 MAT-file, Platform: posix, Created on: Thu Jan  1 00:00:00 1970"


def write_dcsa(root, num_images: int = 24, seed: int = 0, top_folder: bool = False) -> Path:
  """The Clothing Attributes Dataset (Chen et al., ECCV 2012) as `ClothingAttributeDataset.zip`.

  Writes `images/000001.jpg ...` (`num_images` of them) and `labels/<label>_GT.mat` for the 26
  labels of `schema.DCSA_LABELS`, each holding `GT`, a (num_images, 1) float64 column written by
  `scipy.io.savemat` (MATLAB 5 format, the header's creation time fixed): binary labels coded
  1/2 (2 = present), multi-class labels 1-based; every code of every label occurs once when
  num_images allows, and about 10% of the values are NaN (missing; at least one per label when
  num_images > number of codes). With `top_folder=True` everything goes under
  `root/ClothingAttributeDataset/`, as the published zip unpacks. Returns `root`.
  """
  from scipy.io import savemat  # deferred: only this writer needs scipy

  root = Path(root)
  rng = np.random.default_rng(seed)
  base = root / DCSA_FOLDER if top_folder else root
  for number in range(1, num_images + 1):
    write_random_jpeg(base / "images" / f"{number:06d}.jpg", rng)
  (base / "labels").mkdir(parents=True, exist_ok=True)
  for label in schema.DCSA_LABELS:
    classes = schema.DCSA_MULTICLASS_LABELS.get(label, ("absent", "present"))
    k = len(classes)
    values = np.asarray(list(range(1, k + 1))[:num_images]
                        + rng.integers(1, k + 1, max(0, num_images - k)).tolist(), np.float64)
    if num_images > k:  # NaN only where it cannot hide the one occurrence of a code
      values[rng.choice(np.arange(k, num_images), min(num_images - k, max(1, num_images // 10)),
                        replace=False)] = np.nan
    values = values[rng.permutation(num_images)]
    buffer = io.BytesIO()
    savemat(buffer, {"GT": values[:, None]})
    # The 116-byte text header carries the time of writing: fix it, so the bytes depend on the
    # seed only (readers look at the version and endianness that follow it).
    data = _MAT_HEADER.ljust(116).encode() + buffer.getvalue()[116:]
    (base / "labels" / f"{label}_GT.mat").write_bytes(data)
  return root


# ---- Shop/street pairs (MTCT) ----------------------------------------------------------------
SHOP_STREET_ATTRIBUTES = {
    "color": ("red", "navy blue", "black"),
    "sleeve": ("long", "short", "sleeveless"),
    "pattern": ("solid", "striped", "floral"),
}
SHOP_STREET_CATEGORIES = ("T-shirt", "Dress", "Coat", "Blouse")


def write_shop_street(root, num_items: int = 8, seed: int = 0) -> Path:
  """Shop/street pairs in the CSV layout of docs/datasets.md ("Shop/street pairs").

  Every item (ids 1..num_items) has one shop image `shop/<item>.jpg` and two street images
  `street/<item>_a.jpg`, `street/<item>_b.jpg`, all in the same split; items are split 6/1/1
  (for 8 items; val and test each get round(num_items / 8), at least 1, when num_items >= 3,
  the rest is train). Writes `train.csv`, and `val.csv` / `test.csv` when they have items,
  with header `image,domain,item_id,category,x1,y1,x2,y2,<group>/<attribute>` for the 3 groups
  of `SHOP_STREET_ATTRIBUTES` (3 attributes each): exactly one 1 per group, the rest 0, the
  same for every image of an item. The shop image and the first street image carry an integer
  bbox inside the image; the second street image has four empty bbox cells. Returns `root`.
  """
  root = Path(root)
  rng = np.random.default_rng(seed)
  held_out = max(1, round(num_items / 8)) if num_items >= 3 else 0
  order = rng.permutation(num_items) + 1
  splits = {"train": order[2 * held_out:], "val": order[:held_out],
            "test": order[held_out:2 * held_out]}
  columns = [f"{g}/{a}" for g, names in SHOP_STREET_ATTRIBUTES.items() for a in names]
  header = "image,domain,item_id,category,x1,y1,x2,y2," + ",".join(columns)
  for split, items in splits.items():
    if not len(items):
      continue
    rows = []
    for item in sorted(int(i) for i in items):
      category = SHOP_STREET_CATEGORIES[int(rng.integers(len(SHOP_STREET_CATEGORIES)))]
      values = []
      for names in SHOP_STREET_ATTRIBUTES.values():
        chosen = int(rng.integers(len(names)))
        values += ["1" if i == chosen else "0" for i in range(len(names))]
      views = [("shop", f"shop/{item:04d}.jpg"), ("street", f"street/{item:04d}_a.jpg"),
               ("street", f"street/{item:04d}_b.jpg")]
      for view, (domain, image) in enumerate(views):
        width, height = write_random_jpeg(root / image, rng)
        bbox = ["", "", "", ""]
        if view < 2:
          x1, y1 = (int(rng.integers(0, s // 4)) for s in (width, height))
          x2, y2 = (int(rng.integers(s - s // 4, s)) for s in (width, height))
          bbox = [str(c) for c in (x1, y1, x2, y2)]
        rows.append(",".join([image, domain, str(item), category, *bbox, *values]))
    _write_lines(root / f"{split}.csv", [header] + rows)
  return root


def write_masks(image_root, image_ids, masks_dir, seed: int = 0) -> Path:
  """One mask per image, as `prepare --masks` reads them: `masks_dir/<image id>.png`, the size
  of the image, 255 on an ellipse around the centre (the "person"), 0 elsewhere."""
  from PIL import Image, ImageDraw

  rng = np.random.default_rng(seed)
  masks_dir = Path(masks_dir)
  for image_id in image_ids:
    with Image.open(Path(image_root) / image_id) as image:
      w, h = image.size
    mask = Image.new("L", (w, h), 0)
    dx, dy = rng.uniform(0.15, 0.35) * w, rng.uniform(0.2, 0.45) * h
    ImageDraw.Draw(mask).ellipse((w / 2 - dx, h / 2 - dy, w / 2 + dx, h / 2 + dy), fill=255)
    path = masks_dir / Path(image_id).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    mask.save(path)
  return masks_dir
