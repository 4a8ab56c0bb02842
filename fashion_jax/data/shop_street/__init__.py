"""The `shop_street` TFDS builder (manual download)."""

from fashion_jax.data.shop_street.shop_street import ShopStreet

__all__ = ["ShopStreet"]
