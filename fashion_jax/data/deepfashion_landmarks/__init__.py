"""The `deepfashion_landmarks` TFDS builder (manual download)."""

from fashion_jax.data.deepfashion_landmarks.deepfashion_landmarks import DeepfashionLandmarks

__all__ = ["DeepfashionLandmarks"]
