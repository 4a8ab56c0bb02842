"""Geometric augmentation keeps keypoints on the pixels they annotate."""

import numpy as np
import pytest

from fashion_jax.data import schema, transforms


def _dotted_example(rng, h=160, w=130):
  """A black image with a 7x7 square of a unique colour at each of the 24 keypoints, on a
  jittered 6x4 grid so that squares never touch."""
  image = np.zeros((h, w, 3), np.uint8)
  gx, gy = np.meshgrid(np.arange(4) * 24 + 28, np.arange(6) * 20 + 28)
  points = np.stack([gx.ravel(), gy.ravel()], -1) + rng.integers(-3, 4, (24, 2))
  colours = rng.permutation(24) * 8 + 40  # red levels 8 apart identify each keypoint
  for (x, y), c in zip(points, colours, strict=True):
    image[y - 3:y + 4, x - 3:x + 4] = (c, 255, 0)
  example = schema.empty_example(0)
  example.update(image=image, keypoints=np.round(points).astype(np.float32),
                 keypoints_visibility=np.full(24, schema.VISIBLE, np.int8),
                 bbox=np.array([10, 10, w - 11, h - 11], np.float32), has_bbox=True,
                 mask=np.zeros((h, w, 1), np.uint8))
  return example, colours


@pytest.mark.parametrize("seed", range(6))
def test_augmented_keypoints_sit_on_their_pixels(seed):
  rng = np.random.default_rng(seed)
  example, colours = _dotted_example(rng)
  aug = transforms.Augment(flip=True, scale=(1.0, 1.4), rotation=40, translate=0.1)
  params = transforms.sample_augmentation(aug, rng)
  params["flip"] = seed % 2 == 1  # both branches, deterministically
  box = transforms.crop_box(example, "bbox", margin=0.1)
  out = transforms.warp_example(example, box, (150, 120), params, with_mask=False)
  source = schema.KEYPOINT_FLIP_PERMUTATION if params["flip"] else np.arange(24)
  checked = 0
  for i in range(24):
    x, y = np.round(out["keypoints"][i]).astype(int)
    if out["keypoints_visibility"][i] != schema.VISIBLE:
      assert out["keypoints_visibility"][i] == schema.TRUNCATED
      assert not (-0.5 < out["keypoints"][i, 0] < 119.5 and -0.5 < out["keypoints"][i, 1] < 149.5)
      continue
    pixel = out["image"][y, x]
    assert pixel[1] > 150, f"keypoint {i} at {(x, y)} is not on a dot"
    assert abs(int(pixel[0]) - int(colours[source[i]])) <= 3, f"keypoint {i} on the wrong dot"
    checked += 1
  assert checked >= 10


def test_points_leaving_the_frame_become_truncated_and_absent_stays_absent():
  example = schema.empty_example(0)
  example.update(image=np.zeros((50, 50, 3), np.uint8), mask=np.zeros((50, 50, 1), np.uint8))
  example["keypoints"][:3] = [[25, 25], [49, 25], [3, 3]]
  example["keypoints_visibility"][:3] = schema.VISIBLE
  example["keypoints_visibility"][1] = schema.OCCLUDED
  params = {"flip": False, "scale": 2.0, "rotation_deg": 0.0, "shift": (0.0, 0.0)}
  out = transforms.warp_example(example, transforms.crop_box(example, "image", 0), (50, 50),
                                params, with_mask=True)
  np.testing.assert_allclose(out["keypoints"][0], [25.5, 25.5], atol=1e-4)  # 0.5 off centre, x2
  assert list(out["keypoints_visibility"][:4]) == [schema.VISIBLE, schema.TRUNCATED,
                                                   schema.TRUNCATED, schema.ABSENT]
  assert np.all(out["keypoints"][3] == 0)


def test_box_maps_onto_the_output_without_keeping_aspect():
  box = np.array([10.0, 20.0, 109.0, 69.0])  # 100 x 50 pixels
  m = transforms.box_to_output_affine(box, (224, 224))
  corners = transforms.apply_affine(np.array([[9.5, 19.5], [109.5, 69.5]]), m)
  np.testing.assert_allclose(corners, [[-0.5, -0.5], [223.5, 223.5]], atol=1e-9)


def test_to_original_inverts_the_transform():
  rng = np.random.default_rng(3)
  mats = np.stack([transforms.box_to_output_affine(
      np.array([5.0, 7.0, 90.0, 60.0]), (32, 48), scale=rng.uniform(0.5, 2),
      rotation_deg=rng.uniform(-90, 90), shift=(3.0, -2.0), flip=bool(i % 2)) for i in range(4)])
  pts = rng.uniform(0, 100, (4, 6, 2))
  moved = np.stack([transforms.apply_affine(p, m) for p, m in zip(pts, mats, strict=True)])
  np.testing.assert_allclose(transforms.to_original(moved, mats), pts, atol=1e-9)


def test_colour_jitter_changes_colour_only_within_range():
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
  out = transforms.jitter_colour(img, 0.2, rng)
  assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
  assert transforms.jitter_colour(img, 0.0, rng) is img


def test_colour_jitter_is_the_documented_formula():
  """Against the three steps written out in float64 (an independent reference): equal up to
  one level of rounding, the image mean kept by brightness-free contrast, and grey pixels left
  grey by saturation."""
  from fashion_jax.data import transforms

  rng = np.random.default_rng(0)
  image = (rng.random((37, 29, 3)) * 255).astype(np.uint8)
  for seed in range(20):
    out = transforms.jitter_colour(image, 0.3, np.random.default_rng(seed))
    b, c, s = np.random.default_rng(seed).uniform(0.7, 1.3, size=3)
    x = image.astype(np.float64) * b
    x = (x - x.mean()) * c + x.mean()
    g = x.mean(axis=-1, keepdims=True)
    expected = np.clip(np.round((x - g) * s + g), 0, 255)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.abs(out.astype(np.float64) - expected).max() <= 1
  grey = np.full((5, 5, 3), 100, np.uint8)
  grey_out = transforms.jitter_colour(grey, 0.3, np.random.default_rng(1))
  assert (grey_out == grey_out[..., :1]).all()  # saturation leaves grey grey
  assert transforms.jitter_colour(image, 0.0, rng) is image
