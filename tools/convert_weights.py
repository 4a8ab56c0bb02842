"""`python -m tools.convert_weights`: the command of fashion_jax/tools/convert_weights.py
(installed as `fashion-jax convert-weights`); its docstring has the flags."""

if __name__ == "__main__":
  import runpy

  runpy.run_module("fashion_jax.tools.convert_weights", run_name="__main__", alter_sys=True)
