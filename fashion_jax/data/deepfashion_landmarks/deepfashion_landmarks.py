"""DeepFashion Fashion Landmark Detection (FLD) as a manual-download TFDS builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fashion_jax.data import deepfashion_lists as lists
from fashion_jax.data import manual_builder, schema

FIELDS = ("bbox", "has_bbox", "landmarks", "landmarks_visibility", "clothes_type")

_INSTRUCTIONS = """\
Download "Fashion Landmark Detection Benchmark" of DeepFashion
(https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/LandmarkDetection.html) and unpack it into the
manual directory so that it holds:
  img/img_XXXXXXXX.jpg                      (from img.zip)
  Anno/list_bbox.txt, Anno/list_landmarks.txt   (Anno/list_joints.txt is not read)
  Eval/list_eval_partition.txt
Then: python -m fashion_jax.data.prepare --dataset=deepfashion_landmarks --manual_dir=DIR \\
  --data_dir=DIR
"""


def read_fld(root: Path) -> manual_builder.Plan:
  """Parses FLD: rows with variation_type, padded with zero triples to 8 landmarks."""
  partition_path = root / "Eval" / "list_eval_partition.txt"
  partition = lists.read_partition(partition_path)
  known = (partition_path, partition)
  bbox = lists.read_bboxes(root / "Anno" / "list_bbox.txt", *known)
  landmarks = lists.read_landmarks(root / "Anno" / "list_landmarks.txt", *known)
  splits = {}
  for split, names in lists.split_names(partition).items():
    fields = manual_builder.empty_fields(len(names), 0, FIELDS)
    fields.update(lists.landmark_columns(names, landmarks))
    fields["bbox"] = np.stack([bbox[n] for n in names])
    fields["has_bbox"][:] = True
    splits[split] = manual_builder.SplitTable(names, lists.image_paths(root, names), fields)
  return manual_builder.Plan(spec=fld_spec(), splits=splits,
                             notes=[lists.variation_note(landmarks)])


def fld_spec() -> schema.DatasetSpec:
  return schema.DatasetSpec(labels=("landmarks", "bbox"))


class DeepfashionLandmarks(manual_builder.ManualBuilder):
  """FLD: 8 landmark slots with visibility, clothes type and bbox; no categories."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  HOMEPAGE = "https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/LandmarkDetection.html"

  LAYOUT_MARKERS = ("Anno", "Eval")

  def static_spec(self) -> schema.DatasetSpec:
    return fld_spec()

  def read_annotations(self, manual_dir: Path) -> manual_builder.Plan:
    return read_fld(Path(manual_dir))
