"""Model registry: config.system -> the `System` a model file exports."""

import importlib

from fashion_jax.models.base import System

SYSTEMS = {
    "fpm": "fashion_jax.models.fpm",
    "landmark_attention": "fashion_jax.models.landmark_attention",
}


def get_system(name: str) -> System:
  if name not in SYSTEMS:
    raise ValueError(f"unknown system {name!r}; known: {sorted(SYSTEMS)}")
  return importlib.import_module(SYSTEMS[name]).SYSTEM
