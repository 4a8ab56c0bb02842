"""DeepFashion metrics against hand-computed cases."""

import numpy as np
import pytest

from fashion_jax import metrics
from fashion_jax.data import schema

VIS, OCC, ABS = schema.VISIBLE, schema.OCCLUDED, schema.ABSENT


def test_landmark_error_normalises_by_the_crop_and_counts_visible_inside_only():
  # Image 0: bbox 0..99 x 0..49 -> crop 100 x 50. Slot 0 off by (10, 5) px -> (0.1, 0.1)
  # -> NE sqrt(0.02). Slot 1 exact -> 0. Slot 2 occluded, slot 3 outside the bbox: ignored.
  gt = np.zeros((2, 8, 2))
  gt[0, :4] = [[10, 10], [20, 20], [30, 30], [150, 10]]
  pred = gt.copy()
  pred[0, 0] += (10, 5)
  pred[0, 2] += (50, 0)
  pred[0, 3] += (50, 0)
  vis = np.full((2, 8), ABS)
  vis[0, :4] = [VIS, VIS, OCC, VIS]
  # Image 1: crop 200 x 200; slot 0 off by (0, 40) -> 0.2.
  gt[1, 0] = (50, 60)
  pred[1, 0] = (50, 100)
  vis[1, 0] = VIS
  bbox = np.array([[0, 0, 99, 49], [0, 0, 199, 199]], float)
  out = metrics.deepfashion_landmark_error(predictions=pred, landmarks=gt, visibility=vis,
                                           bbox=bbox)
  slot0 = (np.sqrt(0.02) + 0.2) / 2
  assert out["per_slot"]["left_collar"] == pytest.approx(slot0)
  assert out["per_slot"]["right_collar"] == pytest.approx(0.0)
  assert np.isnan(out["per_slot"]["left_sleeve"]) and np.isnan(out["per_slot"]["right_sleeve"])
  assert out["mean"] == pytest.approx(slot0 / 2)  # plain mean of the two defined slot means
  assert out["num_counted"][:4] == [2, 1, 0, 0]


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
