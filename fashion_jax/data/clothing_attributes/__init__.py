"""The `clothing_attributes` TFDS builder (manual download)."""

from fashion_jax.data.clothing_attributes.clothing_attributes import ClothingAttributes

__all__ = ["ClothingAttributes"]
