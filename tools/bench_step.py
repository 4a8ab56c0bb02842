"""`python -m tools.bench_step`: the command of fashion_jax/tools/bench_step.py (installed as
`fashion-jax bench`); its docstring has the flags."""

if __name__ == "__main__":
  import runpy

  runpy.run_module("fashion_jax.tools.bench_step", run_name="__main__", alter_sys=True)
