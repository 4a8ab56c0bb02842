"""Experiment runners: variants x seeds with paired tests (`ablate`) and k-fold cross-validation
(`cross_validate`). Commands: `fashion-jax ablate`, `fashion-jax cross-validate` (or `python -m
tools.ablate`, `python -m tools.cross_validate` in the repository)."""
