"""Evaluation metrics as pure numpy functions over a whole evaluation set (docs/evaluation.md).

Each takes explicit arrays (predictions, ground truth, masks) and returns a flat dict of floats
and lists that is written to JSON as it is. Coordinates are in the original image's pixels.
"""

from __future__ import annotations

import numpy as np

from fashion_jax.data import schema

_KP = {name: i for i, name in enumerate(schema.KEYPOINT_NAMES)}
# FashionAI normalising pair per category: armpits for tops and dresses, waistband for bottoms.
FASHIONAI_NORMALISER = {
    "blouse": ("armpit_left", "armpit_right"),
    "outwear": ("armpit_left", "armpit_right"),
    "dress": ("armpit_left", "armpit_right"),
    "skirt": ("waistband_left", "waistband_right"),
    "trousers": ("waistband_left", "waistband_right"),
}
# Columns of Table 1 of the Fashion Pose Machine paper: left/right keypoints pooled per column.
FASHIONAI_TABLE_COLUMNS = (
    ("Neck L.R", ("neckline_left", "neckline_right")),
    ("C.Front", ("center_front",)),
    ("Shoulder L.R", ("shoulder_left", "shoulder_right")),
    ("Armpit L.R", ("armpit_left", "armpit_right")),
    ("W.line L.R", ("waistline_left", "waistline_right")),
    ("Cuff.I L.R", ("cuff_left_in", "cuff_right_in")),
    ("Cuff.O L.R", ("cuff_left_out", "cuff_right_out")),
    ("Top Hem L.R", ("top_hem_left", "top_hem_right")),
    ("W.band L.R", ("waistband_left", "waistband_right")),
    ("Hem L.R", ("hemline_left", "hemline_right")),
    ("Crotch", ("crotch",)),
    ("Bottom.I L.R", ("bottom_left_in", "bottom_right_in")),
    ("Bottom.O L.R", ("bottom_left_out", "bottom_right_out")),
)


def fashionai_normaliser(keypoints: np.ndarray, visibility: np.ndarray,
                         category: np.ndarray) -> np.ndarray:
  """Normalising distance s per image; NaN where it is undefined.

  Args:
    keypoints: [N, 24, 2] ground truth; visibility: [N, 24] schema codes;
    category: [N] index into `schema.FASHIONAI_CATEGORIES` (-1 unknown).

  Returns:
    [N] distances; NaN when the category is unknown or a normalising keypoint is ABSENT
    (occluded keypoints carry coordinates and do define s).
  """
  n = keypoints.shape[0]
  s = np.full(n, np.nan)
  for c, name in enumerate(schema.FASHIONAI_CATEGORIES):
    a, b = (_KP[k] for k in FASHIONAI_NORMALISER[name])
    rows = np.flatnonzero(category == c)
    defined = (visibility[rows, a] != schema.ABSENT) & (visibility[rows, b] != schema.ABSENT)
    dist = np.linalg.norm(keypoints[rows, a] - keypoints[rows, b], axis=-1)
    s[rows] = np.where(defined, dist, np.nan)
  return s


def fashionai_normalized_error(*, predictions: np.ndarray, keypoints: np.ndarray,
                               visibility: np.ndarray, category: np.ndarray,
                               valid: np.ndarray | None = None) -> dict:
  """The FashionAI normalised error (NE).

  Only ground-truth keypoints with visibility VISIBLE count; NE = sum of d / s over all counted
  keypoints of all images, divided by their number. Images whose s is undefined or zero are
  skipped and counted in `num_skipped_images`.

  Args:
    predictions, keypoints: [N, 24, 2] (x, y) original-image pixels.
    visibility: [N, 24] schema codes of the ground truth.
    category: [N] FashionAI category index.
    valid: [N] bool, False for padding examples (excluded entirely); default all True.

  Returns:
    dict with `mean`, `per_keypoint` [24] (NaN where nothing counted), `per_column` (Table 1),
    `num_counted`, `num_images`, `num_skipped_images`.
  """
  predictions = np.asarray(predictions, np.float64)
  keypoints = np.asarray(keypoints, np.float64)
  if valid is None:
    valid = np.ones(len(keypoints), bool)
  valid = np.asarray(valid, bool)
  s = fashionai_normaliser(keypoints, visibility, np.asarray(category))
  usable = valid & np.isfinite(s) & (s > 0)
  counted = usable[:, None] & (np.asarray(visibility) == schema.VISIBLE)
  d = np.linalg.norm(predictions - keypoints, axis=-1)
  ratio = np.where(counted, d / np.where(usable, s, 1.0)[:, None], 0.0)
  return _pooled_by_keypoint(ratio, counted) | {
      "num_images": int(valid.sum()), "num_skipped_images": int((valid & ~usable).sum())}


def _pooled_by_keypoint(errors: np.ndarray, counted: np.ndarray) -> dict:
  """Pools [N, 24] per-keypoint `errors` where `counted`: the mean over all counted keypoints,
  per keypoint, and per Table 1 column (left and right pooled), NaN where nothing counted."""
  sums, counts = np.where(counted, errors, 0.0).sum(0), counted.sum(0)

  def pooled(idx):
    c = counts[list(idx)].sum()
    return float(sums[list(idx)].sum() / c) if c else float("nan")

  return {
      "mean": pooled(range(len(schema.KEYPOINT_NAMES))),
      "per_keypoint": [pooled([i]) for i in range(len(schema.KEYPOINT_NAMES))],
      "per_column": {col: pooled([_KP[k] for k in names])
                     for col, names in FASHIONAI_TABLE_COLUMNS},
      "num_counted": int(counts.sum()),
  }


def normalized_coordinate_error(*, predictions: np.ndarray, keypoints: np.ndarray,
                                visibility: np.ndarray, image_size: np.ndarray,
                                valid: np.ndarray | None = None) -> dict:
  """The pose-machine paper's NE: "the l2 distance between predicted and ground truth landmarks
  in the normalized coordinate space", the DeepFashion definition it cites.

  A point's normalised coordinates are (x / W, y / H) with W, H the width and height of the
  image it was annotated on (the whole image: FashionAI has no garment boxes). Only keypoints
  VISIBLE in the ground truth count, as in the challenge NE and DeepFashion's NE. Pooled as the
  paper's Table 1: a column is the mean over the counted keypoints of its left and right points
  (of all images), `mean` the mean over all counted keypoints (the paper's "Ave" is not the mean
  of its columns, so it pools keypoints).

  Args:
    predictions, keypoints: [N, 24, 2] (x, y) original-image pixels.
    visibility: [N, 24] schema codes of the ground truth.
    image_size: [N, 2] (height, width) of each original image.
    valid: [N] bool, False for padding examples; default all True.

  Returns:
    dict with `mean`, `per_keypoint` [24], `per_column` (Table 1), `num_counted`,
    `num_images`.
  """
  predictions = np.asarray(predictions, np.float64)
  keypoints = np.asarray(keypoints, np.float64)
  valid = np.ones(len(keypoints), bool) if valid is None else np.asarray(valid, bool)
  width_height = np.asarray(image_size, np.float64)[:, ::-1]  # [N, 2] (W, H)
  usable = valid & np.all(width_height > 0, axis=-1)
  counted = usable[:, None] & (np.asarray(visibility) == schema.VISIBLE)
  scale = np.where(usable[:, None], width_height, 1.0)[:, None, :]
  d = np.linalg.norm((predictions - keypoints) / scale, axis=-1)
  return _pooled_by_keypoint(d, counted) | {"num_images": int(valid.sum())}


def deepfashion_landmark_error(*, predictions: np.ndarray, landmarks: np.ndarray,
                               visibility: np.ndarray, bbox: np.ndarray,
                               valid: np.ndarray | None = None) -> dict:
  """DeepFashion landmark normalised error (NE), as the landmark-attention authors' public code.

  Their evaluation crops the image to the ground-truth bbox as `image[y1:y2, x1:x2]` and
  normalises by that crop: a point's normalised position is ((x - x1) / (x2 - x1),
  (y - y1) / (y2 - y1)), and a landmark counts only when it lies in the crop, x1 <= x < x2 and
  y1 <= y < y2 (and is VISIBLE). NE is the Euclidean distance between prediction and ground
  truth in those coordinates. Each slot's NE is its mean over images; `mean` is the plain mean of
  the slot means (slots with nothing counted are left out and reported as NaN). Images whose box
  has no width or height count nothing.

  Args:
    predictions, landmarks: [N, 8, 2] (x, y) original-image pixels.
    visibility: [N, 8] schema codes; bbox: [N, 4] (x1, y1, x2, y2) ground-truth boxes.
    valid: [N] bool, False for padding.

  Returns:
    dict with `mean`, `per_slot` {slot name: NE}, `num_counted` per slot.
  """
  predictions, landmarks = np.asarray(predictions, np.float64), np.asarray(landmarks, np.float64)
  bbox = np.asarray(bbox, np.float64)
  valid = np.ones(len(landmarks), bool) if valid is None else np.asarray(valid, bool)
  origin = bbox[:, None, :2]
  size = (bbox[:, 2:] - bbox[:, :2])[:, None, :]
  has_area = np.all(size > 0, axis=-1)  # [N, 1]
  size = np.where(size > 0, size, 1.0)
  gt, pred = (landmarks - origin) / size, (predictions - origin) / size
  inside = np.all((gt >= 0) & (gt < 1), axis=-1) & has_area
  counted = valid[:, None] & (np.asarray(visibility) == schema.VISIBLE) & inside
  dist = np.where(counted, np.linalg.norm(pred - gt, axis=-1), 0.0)
  counts = counted.sum(0)
  slot = np.where(counts > 0, dist.sum(0) / np.maximum(counts, 1), np.nan)
  return {
      "mean": float(np.nanmean(slot)) if np.any(counts) else float("nan"),
      "per_slot": {name: float(v) for name, v in zip(schema.LANDMARK_NAMES, slot, strict=True)},
      "num_counted": counts.tolist(),
  }


def top_k_accuracy(*, scores: np.ndarray, labels: np.ndarray, ks=(1, 3, 5),
                   valid: np.ndarray | None = None) -> dict:
  """Fraction of labelled images whose label is among the k highest scores.

  Args:
    scores: [N, C]; labels: [N] class index, -1 when missing (not counted).
  """
  labels = np.asarray(labels)
  valid = np.ones(len(labels), bool) if valid is None else np.asarray(valid, bool)
  keep = valid & (labels >= 0)
  order = np.argsort(-np.asarray(scores, np.float64)[keep], axis=-1, kind="stable")
  rank = np.argmax(order == labels[keep][:, None], axis=-1)  # 0 = best
  n = int(keep.sum())
  return {f"top{k}": float(np.mean(rank < k)) if n else float("nan") for k in ks} | {
      "num_images": n}


def attribute_recall_at_k(*, scores: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                          group_names: tuple[str, ...], ks=(3, 5),
                          valid: np.ndarray | None = None) -> dict:
  """DeepFashion attribute top-k recall, micro-averaged, per group and over all attributes.

  recall@k = sum over images of |top-k predicted ∩ positives| / sum over images of |positives|.
  For a group, only that group's attributes are ranked. Unknown labels (-1) are not positives.

  Args:
    scores: [N, A]; labels: [N, A] in {1, 0, -1}; groups: [A] group index per attribute.

  Returns:
    {group name or "all": {"top3": ..., "top5": ...}}.
  """
  scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
  valid = np.ones(len(labels), bool) if valid is None else np.asarray(valid, bool)
  scores, positive = scores[valid], labels[valid] == 1
  groups = np.asarray(groups)
  selections = {name: groups == g for g, name in enumerate(group_names)}
  selections["all"] = np.ones(len(groups), bool)
  out = {}
  for name, sel in selections.items():
    s, pos = scores[:, sel], positive[:, sel]
    order = np.argsort(-s, axis=-1, kind="stable")
    total = pos.sum()
    out[name] = {}
    for k in ks:
      hits = np.take_along_axis(pos, order[:, :k], axis=-1).sum()
      out[name][f"top{k}"] = float(hits / total) if total else float("nan")
  return out


def dcsa_accuracy(*, binary_scores: np.ndarray, class_scores: list[np.ndarray],
                  labels: np.ndarray, valid: np.ndarray | None = None) -> dict:
  """Clothing Attributes per-label accuracy and their unweighted mean (MACC).

  Per label, the accuracy over the images where that label is present (not -1): a binary label
  is predicted present when its score is >= 0.5; a multi-class label is the argmax. MACC is the
  plain mean over the labels that are present in at least one image (a label absent from every
  image, as `gender` on the synthetic set, is left out and counted in `num_labels`).

  Args:
    binary_scores: [N, 23] in [0, 1]; class_scores: [N, 7], [N, 3], [N, 3] (category, neckline,
      sleeve length); labels: [N, 26] schema codes (0/1, 0-based classes, -1 missing).

  Returns:
    dict with `macc`, `per_label` {name: accuracy or NaN}, `num_present` per label,
    `num_labels` (labels counted in MACC), `num_images`.
  """
  labels = np.asarray(labels)
  valid = np.ones(len(labels), bool) if valid is None else np.asarray(valid, bool)
  predicted = np.concatenate(
      [(np.asarray(binary_scores) >= 0.5).astype(np.int64),
       np.stack([np.argmax(s, axis=-1) for s in class_scores], axis=1)], axis=1)
  present = (labels >= 0) & valid[:, None]
  counts = present.sum(0)
  correct = ((predicted == labels) & present).sum(0)
  per_label = np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)
  return {"macc": float(np.nanmean(per_label)) if np.any(counts) else float("nan"),
          "per_label": {n: float(v) for n, v in zip(schema.DCSA_LABELS, per_label, strict=True)},
          "num_present": counts.tolist(), "num_labels": int((counts > 0).sum()),
          "num_images": int(valid.sum())}


def group_labels(attributes: np.ndarray, groups: np.ndarray, num_groups: int) -> np.ndarray:
  """[N, G] the labelled value of each single-label group as an index within the group (-1:
  the group is missing), from one-positive-per-group `attributes` [N, A] in {1, 0, -1}."""
  attributes, groups = np.asarray(attributes), np.asarray(groups)
  out = np.full((len(attributes), num_groups), -1, np.int64)
  for g in range(num_groups):
    members = attributes[:, groups == g] == 1
    out[:, g] = np.where(members.any(1), np.argmax(members, axis=1), -1)
  return out


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
  """Average precision as scikit-learn's `average_precision_score`: sum over the distinct score
  thresholds, high to low, of (recall gained there) x (precision there). Images with tied scores
  enter together, so the result never depends on record order; without ties it is the mean
  over the positives of the precision at their rank. NaN without positives.

  Args:
    scores: [N]; positive: [N] bool.
  """
  scores = np.asarray(scores, np.float64)
  hits = np.asarray(positive, bool)[np.argsort(-scores, kind="stable")]
  if not hits.any():
    return float("nan")
  ranked = np.sort(scores)[::-1]
  # The last index of each run of equal scores: a threshold admits the whole run at once.
  ends = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]
  true_pos = np.cumsum(hits)[ends]
  precision = true_pos / (ends + 1)
  recall_gained = np.diff(true_pos, prepend=0) / true_pos[-1]
  return float(np.sum(recall_gained * precision))


def xdomain_attribute_metrics(*, scores: np.ndarray, attributes: np.ndarray, groups: np.ndarray,
                              group_names: tuple[str, ...],
                              valid: np.ndarray | None = None) -> dict:
  """The multi-task curriculum transfer poster's metrics over single-label attribute groups.

  The poster names them without definitions; ours:
    * mAP_cls (class-centric): for every attribute value (class) of every group, the average
      precision (`average_precision`) of ranking the images where that group is labelled by the
      class's score; a group's mAP (`per_group`) is the mean over its classes that have a
      positive image, and `mAP_cls` the plain mean of the group mAPs (groups with no positive
      class left out), as the poster's Table 1 rows average their nine group columns.
      `mAP_cls_pooled` is the mean over all such classes of all groups taken together (it
      weights a group by its number of classes; the headline before this definition).
    * mP_ins / mR_ins (instance-centric): per image, over the groups labelled on it, the classes
      predicted are those scoring at least chance, p(c) >= 1 / (classes in the group) (at
      least the argmax, possibly more); precision = correct predictions / predictions, recall =
      labelled values predicted / labelled groups; each averaged over the images with a
      labelled group.

  Args:
    scores: [N, A] per-group class probabilities (softmax within each group);
    attributes: [N, A] one positive per labelled group, -1 across a missing group;
    groups: [A] group index per attribute; group_names: [G].

  Returns:
    dict with `mAP_cls`, `mAP_cls_pooled`, `mP_ins`, `mR_ins`, `per_group` {name: mAP},
    `num_images`.
  """
  scores, groups = np.asarray(scores, np.float64), np.asarray(groups)
  valid = np.ones(len(scores), bool) if valid is None else np.asarray(valid, bool)
  scores, attributes = scores[valid], np.asarray(attributes)[valid]
  labels = group_labels(attributes, groups, len(group_names))
  per_group, every = {}, []
  hits, predicted, labelled = np.zeros(len(scores)), np.zeros(len(scores)), np.zeros(len(scores))
  for g, name in enumerate(group_names):
    columns = np.flatnonzero(groups == g)
    known = labels[:, g] >= 0
    aps = [average_precision(scores[known, c], labels[known, g] == i)
           for i, c in enumerate(columns)]
    aps = [a for a in aps if np.isfinite(a)]
    per_group[name] = float(np.mean(aps)) if aps else float("nan")
    every += aps
    chosen = scores[:, columns] >= 1.0 / len(columns)
    truth = np.zeros_like(chosen)
    truth[known, labels[known, g]] = True
    hits += (chosen & truth).sum(1) * known
    predicted += chosen.sum(1) * known
    labelled += known
  counted = labelled > 0
  group_maps = [v for v in per_group.values() if np.isfinite(v)]
  return {"mAP_cls": float(np.mean(group_maps)) if group_maps else float("nan"),
          "mAP_cls_pooled": float(np.mean(every)) if every else float("nan"),
          "mP_ins": float(np.mean(hits[counted] / predicted[counted])) if counted.any()
          else float("nan"),
          "mR_ins": float(np.mean(hits[counted] / labelled[counted])) if counted.any()
          else float("nan"),
          "per_group": per_group, "num_images": int(counted.sum())}
