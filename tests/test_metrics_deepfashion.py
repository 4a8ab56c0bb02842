"""DeepFashion metrics against hand-computed cases."""

import numpy as np
import pytest

from fashion_jax import metrics
from fashion_jax.data import schema

VIS, OCC, ABS = schema.VISIBLE, schema.OCCLUDED, schema.ABSENT


def test_landmark_error_normalises_by_the_crop_and_counts_visible_inside_only():
  # As the authors' public evaluator: image 0's bbox (0, 0, 100, 50) crops image[0:50, 0:100],
  # 100 x 50 pixels, origin (0, 0). Slot 0 off by (10, 5) px -> (0.1, 0.1) -> NE sqrt(0.02).
  # Slot 1 exact -> 0. Slot 2 occluded, slot 3 outside the bbox: ignored.
  gt = np.zeros((3, 8, 2))
  gt[0, :4] = [[10, 10], [20, 20], [30, 30], [150, 10]]
  pred = gt.copy()
  pred[0, 0] += (10, 5)
  pred[0, 2] += (50, 0)
  pred[0, 3] += (50, 0)
  vis = np.full((3, 8), ABS)
  vis[0, :4] = [VIS, VIS, OCC, VIS]
  # Image 1: bbox (10, 20, 210, 220), a 200 x 200 crop from (10, 20); slot 0 off by (0, 40)
  # -> 0.2. Slot 1 sits on x2 (x = 210): outside, as x < x2 is required; slot 2 on x1: inside.
  gt[1, :3] = [(60, 80), (210, 100), (10, 100)]
  pred[1, :3] = [(60, 120), (0, 0), (10, 100)]
  vis[1, :3] = VIS
  # Image 2: a box with no width counts nothing.
  gt[2, 0], vis[2, 0] = (5, 5), VIS
  bbox = np.array([[0, 0, 100, 50], [10, 20, 210, 220], [5, 0, 5, 10]], float)
  out = metrics.deepfashion_landmark_error(predictions=pred, landmarks=gt, visibility=vis,
                                           bbox=bbox)
  slot0 = (np.sqrt(0.02) + 0.2) / 2
  assert out["per_slot"]["left_collar"] == pytest.approx(slot0)
  assert out["per_slot"]["right_collar"] == pytest.approx(0.0)
  assert out["per_slot"]["left_sleeve"] == pytest.approx(0.0)  # image 1's point on x1
  assert np.isnan(out["per_slot"]["right_sleeve"])
  assert out["mean"] == pytest.approx(slot0 / 3)  # plain mean of the three defined slot means
  assert out["num_counted"][:4] == [2, 1, 1, 0]


def test_landmark_error_equals_the_authors_evaluator_after_their_crop_and_resize():
  # The public code crops image[y1:y2, x1:x2], rescales it to 224 x 224, keeps landmarks with
  # 0 <= p < 224, divides by 224 and averages the distances per slot, then over slots.
  rng = np.random.default_rng(0)
  n = 40
  x1, y1 = rng.integers(0, 60, n), rng.integers(0, 60, n)
  w, h = rng.integers(80, 240, n), rng.integers(80, 240, n)
  bbox = np.stack([x1, y1, x1 + w, y1 + h], 1).astype(float)
  gt = rng.uniform(-20, 300, (n, 8, 2))
  pred = gt + rng.normal(0, 15, (n, 8, 2))
  vis = rng.choice([VIS, VIS, VIS, OCC, ABS], (n, 8))
  scale = 224 / np.stack([w, h], 1)[:, None, :]
  gt_224 = (gt - bbox[:, None, :2]) * scale
  pred_224 = (pred - bbox[:, None, :2]) * scale
  in_pic = np.all((gt_224 >= 0) & (gt_224 < 224), -1) & (vis == VIS)
  dist = np.linalg.norm(pred_224 / 224 - gt_224 / 224, axis=-1) * in_pic
  expected = dist.sum(0) / in_pic.sum(0)
  out = metrics.deepfashion_landmark_error(predictions=pred, landmarks=gt, visibility=vis,
                                           bbox=bbox)
  assert list(out["per_slot"].values()) == pytest.approx(list(expected))
  assert out["mean"] == pytest.approx(expected.mean())


def test_top_k_accuracy_by_hand():
  scores = np.array([[0.1, 0.5, 0.2, 0.9],   # label 1 is 2nd
                     [0.8, 0.1, 0.05, 0.05],  # label 0 is 1st
                     [0.4, 0.3, 0.2, 0.1],   # label 3 is 4th
                     [0.0, 0.0, 0.0, 1.0]])  # missing label: not counted
  out = metrics.top_k_accuracy(scores=scores, labels=np.array([1, 0, 3, -1]), ks=(1, 3))
  assert out == {"top1": pytest.approx(1 / 3), "top3": pytest.approx(2 / 3), "num_images": 3}


def test_attribute_recall_is_micro_averaged_per_group():
  groups = np.array([0, 0, 0, 1, 1, 1])
  scores = np.array([[0.9, 0.8, 0.1, 0.3, 0.2, 0.1],
                     [0.1, 0.2, 0.3, 0.9, 0.8, 0.7]])
  labels = np.array([[1, -1, 1, 0, 0, 1],   # group 0 positives {0, 2}; group 1 {5}
                     [0, 1, 0, 1, 0, 0]])   # group 0 {1}; group 1 {3}
  out = metrics.attribute_recall_at_k(scores=scores, labels=labels, groups=groups,
                                      group_names=("texture", "fabric"), ks=(1, 2))
  # texture top1: img0 ranks [0,1,2] -> hit 0 (1 of its 2); img1 ranks [2,1,0] -> miss. 1/3.
  # texture top2: img0 {0,1} -> 1 hit; img1 {2,1} -> 1 hit. 2/3.
  assert out["texture"] == {"top1": pytest.approx(1 / 3), "top2": pytest.approx(2 / 3)}
  # fabric top1: img0 ranks [3,4,5] -> miss; img1 [3,..] -> hit. 1/2. top2: same. 1/2.
  assert out["fabric"] == {"top1": pytest.approx(1 / 2), "top2": pytest.approx(1 / 2)}
  # all top2: img0 {0,1} -> 1 of 3 positives; img1 {3,4} -> 1 of 2. 2/5.
  assert out["all"]["top2"] == pytest.approx(2 / 5)
