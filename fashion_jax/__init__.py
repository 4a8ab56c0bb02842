"""fashion_jax: fashion landmark, category and attribute recognition in JAX/Flax."""

from fashion_jax import xla_options as _xla_options

_xla_options.apply()  # before any JAX backend exists: XLA reads its flags once (see the module)
