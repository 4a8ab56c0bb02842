"""DCSA: .mat label files with NaN (written by scipy.io.savemat), label coding, folds."""

import numpy as np
import pytest
from fixtures.real import write_images
from numpy.testing import assert_array_equal
from scipy.io import savemat

from fashion_jax.data import folds, formats, schema
from fashion_jax.data.clothing_attributes import clothing_attributes as dcsa

NAN = np.nan
# Raw GT columns of 4 images: binary 1/2 (2 = present), classes 1-based, NaN missing.
RAW = {label: [1, 2, NAN, 2] for label in schema.DCSA_BINARY_LABELS}
RAW["gender"] = [2, 2, 1, NAN]
RAW["category"] = [7, 1, NAN, 3]
RAW["neckline"] = [1, 3, 2, NAN]
RAW["sleevelength"] = [NAN, NAN, 1, 3]


def write_dcsa(root, raw=RAW, num_images=4):
  for label, values in raw.items():
    (root / "labels").mkdir(parents=True, exist_ok=True)
    savemat(root / "labels" / f"{label}_GT.mat", {"GT": np.asarray(values, float)[:, None]})
  write_images(root, [f"images/{i:06d}.jpg" for i in range(1, num_images + 1)])
  return root


def test_labels_nan_and_coding(tmp_path):
  plan = dcsa.read_dcsa(write_dcsa(tmp_path))
  table = plan.splits["train"]
  assert table.image_ids == [f"images/{i:06d}.jpg" for i in range(1, 5)]
  labels = table.fields["dcsa_labels"]
  assert labels.shape == (4, 26)
  assert_array_equal(labels[:, schema.DCSA_LABELS.index("black")], [0, 1, -1, 1])
  assert_array_equal(labels[:, schema.DCSA_LABELS.index("gender")], [1, 1, 0, -1])
  assert_array_equal(labels[:, 23:], [[6, 0, -1], [0, 2, -1], [-1, 1, 0], [2, -1, 2]])
  assert_array_equal(table.fields["category"], [6, 0, -1, 2])
  assert plan.spec.category_names[6] == "Dress"
  example = table.example(3, 0)
  assert example["category"] == 2 and example["domain"] == -1 and not example["has_bbox"]


def test_bad_label_files(tmp_path):
  write_dcsa(tmp_path)
  raw = dict(RAW, neckline=[1, 4, 2, NAN])
  write_dcsa(tmp_path, raw)
  with pytest.raises(formats.AnnotationError,
                     match=r"neckline_GT.mat:2: value 4 \(image images/000002.jpg\)"):
    dcsa.read_dcsa(tmp_path)
  write_dcsa(tmp_path, dict(RAW, red=[1, 2, 0.5, 2]))
  with pytest.raises(formats.AnnotationError, match=r"red_GT.mat:3: value 0.5"):
    dcsa.read_dcsa(tmp_path)
  write_dcsa(tmp_path, dict(RAW, scarf=[1, 2, 1]))
  with pytest.raises(formats.AnnotationError, match=r"scarf_GT.mat: has 3 rows but .* has 4"):
    dcsa.read_dcsa(tmp_path)
  savemat(tmp_path / "labels" / "scarf_GT.mat", {"labels": np.ones((4, 1))})
  with pytest.raises(formats.AnnotationError, match=r"scarf_GT.mat: has no variable GT"):
    dcsa.read_dcsa(tmp_path)
  (tmp_path / "labels" / "scarf_GT.mat").write_bytes(b"not a mat file")
  with pytest.raises(formats.AnnotationError, match=r"scarf_GT.mat: cannot read"):
    dcsa.read_dcsa(tmp_path)
  (tmp_path / "labels" / "scarf_GT.mat").unlink()
  with pytest.raises(FileNotFoundError, match="scarf_GT.mat"):
    dcsa.read_dcsa(tmp_path)


def test_images_without_labels_are_refused(tmp_path):
  write_dcsa(tmp_path, num_images=5)
  with pytest.raises(formats.AnnotationError, match=r"1 image\(s\) have no labels.*000005.jpg"):
    dcsa.read_dcsa(tmp_path)


def test_folds_partition_the_records_deterministically():
  assignment = folds.fold_assignment(1856, num_folds=16)
  assert_array_equal(assignment, folds.fold_assignment(1856, num_folds=16))
  sizes = np.bincount(assignment, minlength=16)
  assert sizes.sum() == 1856 and sizes.max() - sizes.min() <= 1  # 1856 = 16 * 116
  assert not np.array_equal(assignment, folds.fold_assignment(1856, 16, seed=1))
  # Not contiguous blocks of the image order (images may be grouped by source).
  assert len(np.unique(assignment[:116])) > 8
  train, test = folds.fold_indices(1856, fold=3)
  assert len(test) == 116 and len(np.intersect1d(train, test)) == 0
  assert_array_equal(np.union1d(train, test), np.arange(1856))
  all_test = np.concatenate([folds.fold_indices(1856, f)[1] for f in range(16)])
  assert_array_equal(np.sort(all_test), np.arange(1856))
  view = folds.IndexedSource(list(range(100, 1956)), test)
  assert len(view) == 116 and view[0] == 100 + test[0] and view[-1] == 100 + test[-1]
  with pytest.raises(ValueError, match="fold 16"):
    folds.fold_indices(1856, fold=16)
