"""Predictions written in the benchmarks' own formats, the layouts the package's readers of the
published files parse: the FashionAI challenge submission CSV (`data/fashionai_keypoints`) and
DeepFashion's `list_landmarks.txt` and `list_category_img.txt` (`data/deepfashion_lists`,
`data/deepfashion_attributes`).

Each format function takes {relative name: result} (`predict.json_result`: tuples as lists) and
returns the file's text; `write` writes one atomically. `python -m fashion_jax.predict
--fashionai_csv=F ...` uses them (docs/inference_cli.md).
"""

from __future__ import annotations

import csv
import io
import os

from fashion_jax.data import schema

# Format (the predict command's flag) -> the result field it needs (a model without it is refused).
NEEDS = {"fashionai_csv": "keypoints", "deepfashion_landmarks": "landmarks",
         "deepfashion_categories": "category"}


def fashionai_csv(results: dict, categories: dict[str, str]) -> str:
  """The FashionAI submission: image_id (the relative name), image_category (`categories`),
  then per keypoint `x_y_1` (pixels rounded into the image) when visible, else `-1_-1_-1`."""
  buffer = io.StringIO()
  rows = csv.writer(buffer, lineterminator="\n")
  rows.writerow(["image_id", "image_category", *schema.KEYPOINT_NAMES])
  for name, result in results.items():
    w, h = result["image_size"]
    cells = []
    for point in schema.KEYPOINT_NAMES:
      x, y, _, visible = result["keypoints"][point]
      # The challenge's reader refuses a visible point outside the image.
      cells.append(f"{min(max(round(x), 0), w - 1)}_{min(max(round(y), 0), h - 1)}_1"
                   if visible else "-1_-1_-1")
    rows.writerow([name, categories[name], *cells])
  return buffer.getvalue()


def _listing(header: str, rows: list[str]) -> str:
  """A DeepFashion list file: the count line, the column names, the rows."""
  return "".join(f"{line}\n" for line in (str(len(rows)), header, *rows))


def deepfashion_landmarks(results: dict) -> str:
  """list_landmarks.txt: per image `name clothes_type variation_type` then per landmark
  `visibility x y` (DeepFashion's codes: 0 visible, 1 not), all 8 full-body slots in order.
  No model here predicts the clothes type, so every row is type 3 (full body, the type that
  has all 8 slots), variation_type 0 (not given)."""
  columns = " ".join(f"landmark_visibility_{i} landmark_location_x_{i} landmark_location_y_{i}"
                     for i in range(1, len(schema.LANDMARK_NAMES) + 1))
  rows = []
  for name, result in results.items():
    cells = [f"{0 if v else 1} {round(x)} {round(y)}" for x, y, _, v in (
        result["landmarks"][point] for point in schema.LANDMARK_NAMES)]
    rows.append(f"{name} 3 0 {' '.join(cells)}")
  return _listing(f"image_name clothes_type variation_type {columns}", rows)


def deepfashion_categories(results: dict, category_names) -> str:
  """list_category_img.txt: `name category_label`, the top-1 category 1-based."""
  index = {n: i + 1 for i, n in enumerate(category_names)}
  return _listing("image_name category_label",
                  [f"{name} {index[r['category'][0][0]]}" for name, r in results.items()])


def write(kind: str, path: str, results: dict, category_names, parents: dict[str, str]) -> None:
  """Writes `results` in format `kind` (a key of NEEDS). parents: {name: the name of the folder
  the image is in} (FashionAI's image_category: its layout is Images/<category>/<id>.jpg)."""
  if kind == "fashionai_csv":
    text = fashionai_csv(results, {n: parents[n] for n in results})
  elif kind == "deepfashion_landmarks":
    text = deepfashion_landmarks(results)
  else:
    text = deepfashion_categories(results, category_names)
  write_atomic(path, text)


def write_atomic(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file: a reader never sees half a file."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    f.write(text)
  os.replace(tmp, path)
