"""The built-in synthetic dataset (docs/synthetic.md) as a TFDS builder."""

from fashion_jax.data.fashion_synth.fashion_synth import FashionSynth, FashionSynthConfig

__all__ = ["FashionSynth", "FashionSynthConfig"]
