"""`python -m tools.cross_validate`: the command of fashion_jax/experiments/cross_validate.py
(installed as `fashion-jax cross-validate`); its docstring has the flags and what it writes."""

if __name__ == "__main__":
  import runpy

  runpy.run_module("fashion_jax.experiments.cross_validate", run_name="__main__", alter_sys=True)
