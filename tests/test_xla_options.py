"""The package's XLA CPU options: added before JAX starts, never over the user's own value, off
on request, only on the jaxlib they were measured on, and accepted by this jaxlib's XLA."""

import os
import subprocess
import sys

from fashion_jax import xla_options

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = next(iter(xla_options.CPU_OPTIONS))


def test_the_users_flags_win_and_missing_options_are_appended():
  options = {"xla_a": "1", "xla_b": ""}
  assert xla_options.merged_flags("", options) == "--xla_a=1 --xla_b="
  assert xla_options.merged_flags("--xla_a=7 --other=x", options) == \
      "--xla_a=7 --other=x --xla_b="
  assert xla_options.merged_flags("--xla_a=7 --xla_b=dot", options) == "--xla_a=7 --xla_b=dot"


def test_switched_off_or_on_an_unmeasured_jaxlib_nothing_is_added():
  measured = xla_options.MEASURED_ON[0] + "1"
  assert xla_options.options_for({}, measured) == xla_options.CPU_OPTIONS
  assert xla_options.options_for({"FASHION_JAX_XLA_OPTIONS": "off"}, measured) == {}
  assert xla_options.options_for({}, "0.1.0") == {}  # XLA would abort on an unknown flag


def _python(code, **env):
  environ = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                        env={**environ, **env}, timeout=300)


def test_an_entry_point_sets_the_options_and_xla_accepts_them_but_importing_does_not():
  code = ("import fashion_jax, jax, jax.numpy as jnp, os, sys\n"
          "from fashion_jax import cli, xla_options\n"
          "imported = os.environ.get('XLA_FLAGS', '')\n"
          "cli.parse_flags([sys.argv[0]])\n"  # what every command line does first
          "jnp.ones(3).block_until_ready()\n"  # XLA parses the flags here (aborts if unknown)
          "print(repr(imported), os.environ.get('XLA_FLAGS', ''), xla_options.in_effect())")
  out = _python(code)
  assert out.returncode == 0, out.stderr[-2000:]
  imported, rest = out.stdout.split(" ", 1)
  flags, in_effect = rest.rsplit(" ", 1)
  assert imported == "''"  # importing the package changed nothing
  if xla_options.jaxlib_version().startswith(xla_options.MEASURED_ON):
    assert f"--{NAME}=" in flags
  assert in_effect.strip() == "True"
  off = _python(code, FASHION_JAX_XLA_OPTIONS="off")
  assert off.returncode == 0 and NAME not in off.stdout


def test_too_late_after_jax_started_it_changes_nothing_and_says_so():
  code = ("import jax, jax.numpy as jnp, os\n"
          "jnp.ones(3).block_until_ready()\n"
          "from fashion_jax import xla_options\n"
          "xla_options.apply()\n"
          "print(repr(os.environ.get('XLA_FLAGS')), xla_options.in_effect())")
  out = _python(code)
  assert out.returncode == 0, out.stderr[-2000:]
  if xla_options.jaxlib_version().startswith(xla_options.MEASURED_ON):
    assert out.stdout.split() == ["None", "False"]
