"""Fixture writers in the published formats of FashionAI keypoints, the Clothing Attributes
Dataset (DCSA) and the shop/street CSVs (MTCT), and per-image masks as `prepare --masks` reads
them. Imported by name from the tests (pytest puts this folder on sys.path); the shared helpers
and the DeepFashion writers are in real_fixtures.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from real_fixtures import _cover, _write_lines, write_random_jpeg

from fashion_jax.data import schema
from fashion_jax.data.synth.spec import FASHIONAI_KEYPOINTS
from fashion_jax.metrics import FASHIONAI_NORMALISER

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
