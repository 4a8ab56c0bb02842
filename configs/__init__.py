"""The papers' configs, one file per system (also installed as `fashion_jax.configs`)."""
