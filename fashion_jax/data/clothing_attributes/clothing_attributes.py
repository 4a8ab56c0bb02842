"""The Clothing Attributes Dataset (DCSA) as a manual-download TFDS builder.

All 1856 images form one `train` split in image order; cross-validation folds (16 in the
SisterNetwork paper) come from `fashion_jax.data.folds` over that split's record indices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fashion_jax.data import formats, manual_builder, schema

FIELDS = ("dcsa_labels", "category")
# Binary labels are coded 1/2 in the files (2 = present). Which gender is 2 is not documented
# consistently, so "gender" is kept as the raw value 2 -> 1, 1 -> 0 without a meaning.
BINARY_CODES = {1.0: 0, 2.0: 1}

_INSTRUCTIONS = """\
Download the Clothing Attributes Dataset (Chen et al., ECCV 2012; ClothingAttributeDataset.zip)
and unpack it; the manual directory is the folder it unpacks to (ClothingAttributeDataset/) or
the one holding it, with:
  images/000001.jpg ... images/001856.jpg
  labels/<label>_GT.mat for the 26 labels (black_GT.mat ... category_GT.mat, neckline_GT.mat,
      sleevelength_GT.mat), each with a variable GT of shape (1856, 1), NaN = missing
Then: python -m fashion_jax.data.prepare --dataset=clothing_attributes --manual_dir=DIR \\
  --data_dir=DIR
"""


def label_path(root: Path, label: str) -> Path:
  return root / "labels" / f"{label}_GT.mat"


def image_name(number: int) -> str:
  return f"images/{number:06d}.jpg"


def read_label_file(path: Path) -> np.ndarray:
  """The `GT` column of one label file: [N] float64, NaN where missing."""
  from scipy.io import loadmat  # deferred: only this builder needs scipy
  from scipy.io.matlab import MatReadError

  if not path.is_file():
    raise FileNotFoundError(f"label file not found: {path}")
  try:
    mat = loadmat(path)
  except (MatReadError, ValueError, NotImplementedError, OSError, TypeError) as e:
    raise formats.AnnotationError(
        path, None, f"cannot read it as a MATLAB v4-v7.2 file ({e})") from e
  if "GT" not in mat:
    keys = sorted(k for k in mat if not k.startswith("__"))
    raise formats.AnnotationError(path, None, f"has no variable GT (found {keys})")
  values = np.asarray(mat["GT"])
  if values.ndim != 2 or min(values.shape) != 1 or not np.issubdtype(values.dtype, np.number):
    raise formats.AnnotationError(
        path, None, f"GT must be a numeric (N, 1) column, found {values.dtype} {values.shape}")
  return values.astype(np.float64).ravel()


def decode_labels(values: np.ndarray, codes: dict[float, int], path: Path) -> np.ndarray:
  """Raw GT values -> schema labels (-1 for NaN); any other value names its row and image."""
  labels = np.full(len(values), -1, np.int8)
  for row, value in enumerate(values):
    if np.isnan(value):
      continue
    if value not in codes:
      raise formats.AnnotationError(
          path, row + 1, f"value {value:g} (image {image_name(row + 1)}) is not one of "
          f"{sorted(codes)} or NaN")
    labels[row] = codes[value]
  return labels


def read_dcsa(root: Path) -> manual_builder.Plan:
  columns, num_images = [], None
  for label in schema.DCSA_LABELS:
    path = label_path(root, label)
    values = read_label_file(path)
    if num_images is None:
      num_images, first = len(values), path
    elif len(values) != num_images:
      raise formats.AnnotationError(
          path, None, f"has {len(values)} rows but {first.name} has {num_images}")
    classes = schema.DCSA_MULTICLASS_LABELS.get(label)
    codes = {float(k + 1): k for k in range(len(classes))} if classes else BINARY_CODES
    columns.append(decode_labels(values, codes, path))
  names = [image_name(n) for n in range(1, num_images + 1)]
  unlabelled = sorted({p.relative_to(root).as_posix() for p in (root / "images").glob("*.jpg")}
                      - set(names))
  if unlabelled:
    raise formats.AnnotationError(
        root / "images", None, f"{len(unlabelled)} image(s) have no labels (the label files "
        f"have {num_images} rows): {', '.join(unlabelled[:5])}")
  fields = manual_builder.empty_fields(num_images, 0, FIELDS)
  fields["dcsa_labels"] = np.stack(columns, axis=1)
  fields["category"] = columns[schema.DCSA_LABELS.index("category")].astype(np.int32)
  table = manual_builder.SplitTable(names, [root / n for n in names], fields)
  notes = [f"{int((fields['dcsa_labels'] < 0).sum())} missing (NaN) label values kept as -1"]
  return manual_builder.Plan(spec=dcsa_spec(), splits={"train": table}, notes=notes)


def dcsa_spec() -> schema.DatasetSpec:
  return schema.DatasetSpec(category_names=schema.DCSA_MULTICLASS_LABELS["category"],
                            labels=("dcsa_labels", "category"))


class ClothingAttributes(manual_builder.ManualBuilder):
  """DCSA: 23 binary and 3 multi-class labels per image, NaN kept as missing."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  LAYOUT_MARKERS = ("images", "labels")

  def static_spec(self) -> schema.DatasetSpec:
    return dcsa_spec()

  def read_annotations(self, manual_dir: Path) -> manual_builder.Plan:
    return read_dcsa(Path(manual_dir))
