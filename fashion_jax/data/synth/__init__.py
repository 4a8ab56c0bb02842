"""Procedural renderer of the built-in synthetic dataset (docs/synthetic.md).

  from fashion_jax.data.synth import SynthOptions, render_example, SYNTH_SPEC
  example = render_example(seed=0, index=0, options=SynthOptions(image_size=256))

garments.py: items and their geometry; paint.py: patterns, fabrics, parts; scene.py:
backgrounds, wearer, occluders, camera; spec.py: categories, attributes, labels; render.py:
one example with exact annotations. `fashion_jax/data/fashion_synth` wraps it as a TFDS builder.
"""

from fashion_jax.data.synth.render import SynthOptions, render_example
from fashion_jax.data.synth.spec import SYNTH_SPEC

__all__ = ["SYNTH_SPEC", "SynthOptions", "render_example"]
