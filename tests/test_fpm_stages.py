"""Every stage of the pose machine is decoded and scored (intermediate supervision trains each
stage to predict), so the stage count's effect can be read from one trained model."""

import jax.numpy as jnp
import numpy as np
import pytest

from fashion_jax import metrics
from fashion_jax.data import schema
from fashion_jax.systems import fpm

STRIDE, MAP = 8, 8  # 64x64 input, 8x8 belief maps


def _peaks(map_points: np.ndarray) -> np.ndarray:
  """[B, 24, 2] integer map pixels -> [B, MAP, MAP, 25] maps, one 1.0 per keypoint channel."""
  maps = np.zeros((len(map_points), MAP, MAP, 25), np.float32)
  for b, points in enumerate(map_points):
    for k, (x, y) in enumerate(points):
      maps[b, y, x, k] = 1.0
  return maps


def test_each_stage_is_scored_on_its_own_keypoints():
  rng = np.random.default_rng(0)
  b = 2
  truth_map = np.stack([rng.permutation(36)[:24] for _ in range(b)])  # distinct cells of 6x6
  truth_map = np.stack([1 + truth_map % 6, 1 + truth_map // 6], -1)  # x, y in 1..6
  shifted = truth_map + np.array([1, 0])  # stage 1: one map pixel to the right of the truth
  maps = jnp.asarray(np.stack([_peaks(shifted), _peaks(truth_map)]))  # [T=2, B, 8, 8, 25]
  truth_input = (truth_map + 0.5) * STRIDE - 0.5  # map pixel centres in input pixels
  batch = {"image": np.zeros((b, 64, 64, 3), np.uint8),
           "transform": np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (b, 1, 1)),
           "original_keypoints": truth_input,
           "original_keypoints_visibility": np.full((b, 24), schema.VISIBLE, np.int8),
           "fashionai_category": np.zeros(b, np.int32), "valid": np.ones(b, bool),
           "original_image_size": np.full((b, 2), 64, np.int32)}
  predictions = {k: np.asarray(v) for k, v in fpm.predict({"belief_maps": maps}, batch).items()}
  assert predictions["stage_keypoints"].shape == (b, 2, 24, 2)
  np.testing.assert_array_equal(predictions["stage_keypoints"][:, -1], predictions["keypoints"])
  scores = fpm.score(predictions, batch, spec=None)
  # Stage 2 sits on the truth; stage 1 is STRIDE input pixels off at every keypoint.
  s = metrics.fashionai_normaliser(truth_input, batch["original_keypoints_visibility"],
                                   batch["fashionai_category"])
  assert scores["fashionai_ne_by_stage"]["stage2"] == 0.0 == scores["fashionai_ne"]["mean"]
  np.testing.assert_allclose(scores["fashionai_ne_by_stage"]["stage1"], np.mean(STRIDE / s),
                             rtol=1e-9)


def test_a_predictor_without_stages_is_scored_on_its_keypoints_alone():
  b = 1
  points = np.tile(np.linspace(0, 40, 24)[:, None], (b, 1, 2)).reshape(b, 24, 2)
  batch = {"transform": np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (b, 1, 1)),
           "original_keypoints": points + 1.0,
           "original_keypoints_visibility": np.full((b, 24), schema.VISIBLE, np.int8),
           "fashionai_category": np.zeros(b, np.int32), "valid": np.ones(b, bool),
           "original_image_size": np.array([[50, 100]], np.int32)}  # (H, W)
  scores = fpm.score({"keypoints": points}, batch, spec=None)  # the training-mean baseline
  assert set(scores) == {"paper_ne", "fashionai_ne"} and scores["fashionai_ne"]["mean"] > 0
  # Every point 1 px off in x and y: (1 / W, 1 / H) = (0.01, 0.02) in normalised coordinates.
  assert scores["paper_ne"]["mean"] == pytest.approx(np.hypot(0.01, 0.02))
