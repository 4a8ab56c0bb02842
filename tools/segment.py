"""`python -m tools.segment`: the command of fashion_jax/tools/segment.py (installed as
`fashion-jax segment`); its docstring has the flags."""

if __name__ == "__main__":
  import runpy

  runpy.run_module("fashion_jax.tools.segment", run_name="__main__", alter_sys=True)
