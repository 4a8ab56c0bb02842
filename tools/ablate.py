"""`python -m tools.ablate`: the command of `fashion_jax/experiments/ablate.py` (installed as
`fashion-jax ablate`); its docstring has the flags and what it writes."""

if __name__ == "__main__":
  import runpy

  runpy.run_module("fashion_jax.experiments.ablate", run_name="__main__", alter_sys=True)
