"""The `fashionai_keypoints` TFDS builder (manual download)."""

from fashion_jax.data.fashionai_keypoints.fashionai_keypoints import FashionaiKeypoints

__all__ = ["FashionaiKeypoints"]
