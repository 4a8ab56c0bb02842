"""`python -m tools.bench_pipeline`: the command of fashion_jax/tools/bench_pipeline.py; its
docstring has the flags."""

if __name__ == "__main__":
  import runpy

  runpy.run_module("fashion_jax.tools.bench_pipeline", run_name="__main__", alter_sys=True)
