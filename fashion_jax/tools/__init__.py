"""The user commands that ship with the package: convert_weights, segment, export_synth and the
step benchmark (bench_step, over benchmarking). Installed as `fashion-jax convert-weights |
segment | export-synth | bench`; in the repository also `python -m tools.<name>`."""
