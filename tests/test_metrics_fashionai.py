"""FashionAI normalised error against hand-computed values."""

import numpy as np
import pytest

from fashion_jax import metrics
from fashion_jax.data import schema

KP = {n: i for i, n in enumerate(schema.KEYPOINT_NAMES)}
CAT = {n: i for i, n in enumerate(schema.FASHIONAI_CATEGORIES)}


def _image(category, points, vis):
  gt = np.zeros((24, 2))
  v = np.full(24, schema.ABSENT)
  for name, xy in points.items():
    gt[KP[name]] = xy
    v[KP[name]] = vis.get(name, schema.VISIBLE)
  return gt, v, CAT[category]


def test_hand_computed_ne_with_skipped_images():
  # Image 0, blouse: armpits 10 px apart -> s = 10. Shoulder error 3-4-5 -> d/s = 0.5;
  # armpits predicted exactly -> 0; the occluded neckline does not count.
  g0, v0, c0 = _image("blouse", {"armpit_left": (0, 0), "armpit_right": (10, 0),
                                 "shoulder_left": (2, -5), "neckline_left": (5, -8)},
                      {"neckline_left": schema.OCCLUDED})
  p0 = g0.copy()
  p0[KP["shoulder_left"]] += (3, 4)
  p0[KP["neckline_left"]] += (100, 0)  # occluded: ignored however wrong
  # Image 1, trousers: waistband 20 px apart (occluded right end still defines s).
  # Crotch off by 2 px -> 0.1.
  g1, v1, c1 = _image("trousers", {"waistband_left": (0, 0), "waistband_right": (20, 0),
                                   "crotch": (10, 30)}, {"waistband_right": schema.OCCLUDED})
  p1 = g1.copy()
  p1[KP["crotch"]] += (0, 2)
  # Image 2, skirt whose waistband is absent: s undefined -> skipped.
  g2, v2, c2 = _image("skirt", {"hemline_left": (0, 0)}, {})
  # Image 3, dress with coincident armpits: s = 0 -> skipped.
  g3, v3, c3 = _image("dress", {"armpit_left": (4, 4), "armpit_right": (4, 4)}, {})
  # Image 4 is padding: excluded even though it would count.
  g4, v4, c4 = g0, v0, c0

  out = metrics.fashionai_normalized_error(
      predictions=np.stack([p0, p1, g2 + 50, g3 + 50, g4 + 1000]),
      keypoints=np.stack([g0, g1, g2, g3, g4]), visibility=np.stack([v0, v1, v2, v3, v4]),
      category=np.array([c0, c1, c2, c3, c4]), valid=np.array([1, 1, 1, 1, 0], bool))
  # Counted: image 0 -> armpit_l 0, armpit_r 0, shoulder_l 0.5; image 1 -> waistband_l 0,
  # crotch 0.1. Five keypoints, total 0.6.
  assert out["num_counted"] == 5
  assert out["mean"] == pytest.approx(0.6 / 5)
  assert out["num_images"] == 4 and out["num_skipped_images"] == 2
  assert out["per_keypoint"][KP["shoulder_left"]] == pytest.approx(0.5)
  assert out["per_keypoint"][KP["crotch"]] == pytest.approx(0.1)
  assert np.isnan(out["per_keypoint"][KP["cuff_left_in"]])
  assert out["per_column"]["Shoulder L.R"] == pytest.approx(0.5)  # only the left one counted
  assert out["per_column"]["Armpit L.R"] == pytest.approx(0.0)


def test_normaliser_unknown_category_is_undefined():
  kp = np.zeros((2, 24, 2))
  kp[:, KP["armpit_right"]] = (6, 8)
  vis = np.ones((2, 24), np.int8)
  s = metrics.fashionai_normaliser(kp, vis, np.array([CAT["outwear"], -1]))
  assert s[0] == pytest.approx(10.0) and np.isnan(s[1])


def test_the_pose_machine_papers_ne_divides_by_the_image_size_and_pools_keypoints():
  kp = {name: i for i, name in enumerate(schema.KEYPOINT_NAMES)}
  truth = np.zeros((2, 24, 2))
  pred = truth.copy()
  vis = np.full((2, 24), schema.ABSENT)
  size = np.array([[100, 200], [400, 400]])  # (H, W)
  # Image 0 (W 200, H 100): neckline_left off by (20, 0) -> 0.1; neckline_right off by (0, 10)
  # -> 0.1; crotch off by (20, 10) -> sqrt(0.02); center_front occluded: not counted.
  pred[0, kp["neckline_left"]] += (20, 0)
  pred[0, kp["neckline_right"]] += (0, 10)
  pred[0, kp["crotch"]] += (20, 10)
  pred[0, kp["center_front"]] += (100, 0)
  vis[0, [kp["neckline_left"], kp["neckline_right"], kp["crotch"]]] = schema.VISIBLE
  vis[0, kp["center_front"]] = schema.OCCLUDED
  # Image 1 (400 x 400): neckline_left off by (0, 40) -> 0.1, shoulder_left by (40, 0) -> 0.1.
  pred[1, kp["neckline_left"]] += (0, 40)
  pred[1, kp["shoulder_left"]] += (40, 0)
  vis[1, [kp["neckline_left"], kp["shoulder_left"]]] = schema.VISIBLE
  # A padding row is ignored whatever it holds.
  truth = np.concatenate([truth, np.zeros((1, 24, 2))])
  pred = np.concatenate([pred, np.full((1, 24, 2), 1e6)])
  vis = np.concatenate([vis, np.full((1, 24), schema.VISIBLE)])
  size = np.concatenate([size, [[10, 10]]])
  out = metrics.normalized_coordinate_error(predictions=pred, keypoints=truth, visibility=vis,
                                            image_size=size, valid=np.array([1, 1, 0], bool))
  assert out["per_column"]["Neck L.R"] == pytest.approx(0.1)  # three points, each 0.1
  assert out["per_column"]["Crotch"] == pytest.approx(np.sqrt(0.02))
  assert out["per_column"]["Shoulder L.R"] == pytest.approx(0.1)
  assert np.isnan(out["per_column"]["C.Front"])
  # Pooled over the five counted keypoints, not the mean of the columns.
  assert out["mean"] == pytest.approx((4 * 0.1 + np.sqrt(0.02)) / 5)
  assert out["num_counted"] == 5 and out["num_images"] == 2
