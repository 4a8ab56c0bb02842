"""Input conventions: ImageNet normalisation of uint8 RGB images, on the host and on device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fashion_jax.data import image_conventions


def test_normalize_matches_torchvision_formula_by_hand():
  pixels = np.array([[[[0, 0, 0], [255, 255, 255], [124, 116, 104]]]], np.uint8)  # [1, 1, 3, 3]
  got = image_conventions.normalize(pixels)
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  # torchvision: ToTensor (x / 255) then Normalize ((x - mean) / std), per RGB channel.
  want = (pixels.astype(np.float64) / 255 - mean) / std
  assert isinstance(got, np.ndarray) and got.dtype == np.float32
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  assert got[0, 0, 0, 0] == pytest.approx(-0.485 / 0.229, rel=1e-6)  # black, red channel


def test_normalize_runs_on_device_in_the_compute_dtype():
  pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), np.uint8)
  on_device = jax.jit(lambda p: image_conventions.normalize(p, jnp.bfloat16))(jnp.asarray(pixels))
  assert isinstance(on_device, jax.Array) and on_device.dtype == jnp.bfloat16
  host = image_conventions.normalize(pixels)
  np.testing.assert_allclose(np.asarray(on_device, np.float32), host, rtol=1e-2, atol=1e-2)
  np.testing.assert_array_equal(image_conventions.denormalize(host), pixels)


def test_normalize_rejects_channels_first_images():
  with pytest.raises(ValueError, match=r"\[\.\.\., H, W, 3\] RGB images; got shape \(1, 3, 8, 8\)"):
    image_conventions.normalize(np.zeros((1, 3, 8, 8), np.uint8))
