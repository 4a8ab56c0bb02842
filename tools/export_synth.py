"""`python -m tools.export_synth`: the command of fashion_jax/tools/export_synth.py (installed as
`fashion-jax export-synth`); its docstring has the flags."""

if __name__ == "__main__":
  import runpy

  runpy.run_module("fashion_jax.tools.export_synth", run_name="__main__", alter_sys=True)
