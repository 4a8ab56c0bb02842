"""Inference on image files maps predictions back to each file's own pixels."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np

from fashion_jax import predict, train


def test_predictions_follow_the_image_scale(tiny_fpm_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_fpm_config.max_steps_per_phase = 2
  train.train_and_evaluate(tiny_fpm_config, workdir)
  predictor = predict.Predictor(workdir)
  rng = np.random.default_rng(0)
  small = cv2.resize(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), (64, 48))
  large = cv2.resize(small, (128, 96), interpolation=cv2.INTER_LINEAR)
  (out_small, out_large), extra = predictor([small, large])
  raw = extra["raw"]["keypoints"]  # [2, 24, 2] in the 32x32 network input
  assert raw.shape == (2, 24, 2)
  # The whole image fills the input without keeping the aspect ratio, about pixel centres:
  # x_original + 0.5 = (x_input + 0.5) * W / 32, and the same for y with H.
  for out, (w, h), points in ((out_small, (64, 48), raw[0]), (out_large, (128, 96), raw[1])):
    expected = (points + 0.5) * np.array([w / 32, h / 32]) - 0.5
    np.testing.assert_allclose(np.array(out["keypoints"]), expected, rtol=0, atol=1e-3)
  # Where the network placed a point in the same input pixel, the large image's is doubled.
  same = np.all(raw[0] == raw[1], axis=-1)
  pts_small, pts_large = np.array(out_small["keypoints"]), np.array(out_large["keypoints"])
  np.testing.assert_allclose(pts_large[same] + 0.5, 2 * (pts_small[same] + 0.5), atol=1e-3)
  # Every stage's points are mapped back too; the last stage's are the keypoints.
  stages = np.array(out_small["stage_keypoints"])
  assert stages.shape == (extra["raw"]["stage_keypoints"].shape[1], 24, 2)
  np.testing.assert_allclose(stages[-1], out_small["keypoints"], atol=1e-6)


def test_command_line_writes_json_and_pictures(tiny_fpm_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_fpm_config.max_steps_per_phase = 1
  train.train_and_evaluate(tiny_fpm_config, workdir)
  for i in range(3):
    cv2.imwrite(str(tmp_path / f"img{i}.jpg"), np.full((40, 30, 3), 60 * i, np.uint8))
  out = str(tmp_path / "out")
  res = subprocess.run([sys.executable, "-m", "fashion_jax.predict", f"--workdir={workdir}",
                        f"--images={tmp_path}/img*.jpg", f"--out={out}", "--batch_size=2"],
                       capture_output=True, text=True, timeout=300)
  assert res.returncode == 0, res.stderr[-2000:]
  with open(os.path.join(out, "predictions.json")) as f:
    results = json.load(f)
  assert len(results) == 3 and all(len(r["keypoints"]) == 24 for r in results.values())
  assert sorted(os.listdir(out)) == ["img0.png", "img1.png", "img2.png", "predictions.json"]
