"""The `deepfashion_attributes` TFDS builder (manual download)."""

from fashion_jax.data.deepfashion_attributes.deepfashion_attributes import DeepfashionAttributes

__all__ = ["DeepfashionAttributes"]
