"""XLA options the package sets for the CPU compiler, chosen by measurement.

XLA reads `XLA_FLAGS` once, when JAX first creates a backend, so the command-line entry points
(train, eval, predict, export, the benchmarks and experiment runners: every command that parses
its flags with `fashion_jax.cli.parse_flags`) call `apply()` before any computation; it appends
`CPU_OPTIONS` to `XLA_FLAGS`. Importing `fashion_jax` as a library changes nothing: an
application that wants the options calls `fashion_jax.xla_options.apply()` before its first
JAX computation.
docs/benchmarks.md has the measurements that chose them (tools/compare_torch.py, with and
without). GPU and TPU compilers ignore `xla_cpu_*` options.

Overriding: a flag the user already gives in `XLA_FLAGS` keeps the user's value;
`FASHION_JAX_XLA_OPTIONS=off` adds none. XLA aborts on a flag it does not know, and flags come
and go between releases, so the options are only added on the jaxlib versions they were measured
on (`MEASURED_ON`); elsewhere nothing is added. When JAX has created its backends before
`apply()` runs (a notebook that ran JAX code first), the options cannot take effect;
`in_effect()` says whether they did.
"""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import sys

# flag -> value. YNNPACK for XLA's reduction fusions (its default list is empty in jaxlib
# 0.10): batch norm's statistics, so the batch-norm networks' steps get faster (ResNet-50 at
# 224x224, batch 8: 3.7-3.9 s -> 2.8 s on 2 cores). Measured and not taken: `eltwise` (another
# 0.2 s on ResNet-50, but the MTCT paper config's step then allocates 28 GB at dispatch and
# fails), `dot` (slower VGG-16), `individual_convolution` (2x slower large-kernel
# convolutions). Numbers in docs/benchmarks.md.
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "reduce"}
MEASURED_ON = ("0.10.",)  # jaxlib version prefixes the options exist in and were measured on
OFF_VARIABLE = "FASHION_JAX_XLA_OPTIONS"


def flag_names(xla_flags: str) -> set[str]:
  return {f.lstrip("-").split("=", 1)[0] for f in shlex.split(xla_flags)}


def merged_flags(xla_flags: str, options: dict[str, str]) -> str:
  """`xla_flags` with every option it does not set itself appended."""
  given = flag_names(xla_flags)
  extra = [f"--{name}={value}" for name, value in options.items() if name not in given]
  return " ".join([xla_flags.strip(), *extra]).strip()


def options_for(environ, jaxlib_version: str) -> dict[str, str]:
  """The options to add: none when switched off or on a jaxlib they were not measured on."""
  if environ.get(OFF_VARIABLE, "").strip().lower() in ("off", "0", "false", "no", "none"):
    return {}
  return dict(CPU_OPTIONS) if jaxlib_version.startswith(MEASURED_ON) else {}


def jaxlib_version() -> str:
  try:
    return importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    return ""


def apply(environ=None) -> str:
  """Adds the options to `environ["XLA_FLAGS"]` (default `os.environ`); returns the result.
  Does nothing once JAX's backends exist (the flags would be silently ignored)."""
  environ = os.environ if environ is None else environ
  options = options_for(environ, jaxlib_version())
  if options and not backends_created():
    environ["XLA_FLAGS"] = merged_flags(environ.get("XLA_FLAGS", ""), options)
  return environ.get("XLA_FLAGS", "")


def backends_created() -> bool:
  """Whether JAX has created its backends already (XLA_FLAGS is read then, and only then)."""
  xla_bridge = sys.modules.get("jax._src.xla_bridge")
  return bool(xla_bridge is not None and getattr(xla_bridge, "_backends", None))


def in_effect() -> bool:
  """Whether the backends were created with every option this jaxlib gets in XLA_FLAGS."""
  wanted = options_for(os.environ, jaxlib_version())
  return set(wanted) <= flag_names(os.environ.get("XLA_FLAGS", ""))
