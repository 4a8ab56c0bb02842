"""What the command-line tools share: a flag parser that names a bad `--config.*` override, and
one-paragraph errors with a distinct exit status instead of tracebacks.

Exit statuses: 0 done; 1 an error the message explains (bad input, config or checkpoint; a
diverged run); 2 a bad command line; 128 + N stopped by signal N after saving a checkpoint
(rerun to resume). `--traceback` shows the full traceback of an error as well.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys

from absl import flags, logging

from fashion_jax import checkpoints, xla_options

FLAGS = flags.FLAGS
flags.DEFINE_bool("traceback", False, "On an error, print the full traceback too.")

# Errors whose message is written for the user: bad input files (AnnotationError, image and
# weight errors are ValueErrors), bad config values (ConfigError), unusable checkpoints and
# diverged training (FloatingPointError). Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, checkpoints.CheckpointError, FloatingPointError)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, with a bad command line (an unknown `--config.x=v` field, a config file that
  does not exist or does not load, an unknown config variant) said in one paragraph, exit
  status 2, instead of a traceback. Every command line of the package parses its flags here,
  before JAX starts, so this is also where the package's XLA options are applied (`xla_options`;
  `FASHION_JAX_XLA_OPTIONS=off` or your own value in `XLA_FLAGS` overrides them)."""
  xla_options.apply()
  argv = [_packaged_config(a) for a in argv]
  try:
    rest = FLAGS(argv)
    _check_config_loaded(argv)
    check_tuple_overrides(FLAGS, argv)
    return rest
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
    sys.stderr.write(f"error: {_flag_error(e, argv)}\n")
    sys.exit(2)


CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def packaged_configs() -> list[str]:
  """The names of the configs installed with the package (`fashion_jax/configs/<name>.py`)."""
  return sorted(f[:-3] for f in os.listdir(CONFIGS) if f.endswith(".py") and f[0] != "_")


def config_path(value: str) -> str:
  """`path[:variant]` as given, or for a bare name (`fpm:runlocal`) that is no file here the
  packaged config of that name: so `--config=fpm:runlocal` works from any directory."""
  path, colon, variant = value.partition(":")
  if os.path.exists(path) or not path.isidentifier() or path not in packaged_configs():
    return value
  return os.path.join(CONFIGS, f"{path}.py") + colon + variant


def load_config_file(path_and_variant: str, extra_variants=()):
  """The config of `path[:variant]` (a file or a packaged name), with `extra_variants`
  appended to its variant list."""
  path, _, base = config_path(path_and_variant).partition(":")
  spec = importlib.util.spec_from_file_location("loaded_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(",".join(filter(None, [base, *extra_variants])) or None)


def literal(text: str):
  """A command-line value: a number, boolean, tuple... as Python reads it, else the string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_overrides(config, overrides: dict, what: str = "override") -> None:
  """Sets each dotted field of `overrides` in `config`; a field the config lacks is refused."""
  for key in overrides:
    node = config
    for part in key.split(".")[:-1]:
      node = node[part] if part in node else {}
    if key.split(".")[-1] not in node:
      raise ValueError(f"{what} {key!r}: the config has no such field")
  config.update_from_flattened_dict(overrides)


def _field(config, dotted: str):
  for part in dotted.split("."):
    config = config[part]
  return config


def check_tuple_overrides(flag_values, argv: list[str]) -> None:
  """A `--config.F=...` override of a numeric tuple (an image size, stage sizes, widths) must
  keep the default's length. This catches a tuple given twice, which ml_collections joins
  into one (`(16,16)` then `(8,8)` -> (16, 16, 8, 8)), and a wrong count; a tuple of names
  (`data.categories`, `evals`) may take any length."""
  given = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  overrides = {a.split("=", 1)[0][len("--config."):] for a in argv[1:]
               if a.startswith("--config.") and "=" in a}
  if not given or not overrides:
    return
  defaults = load_config_file(given)
  for name in sorted(overrides):
    try:
      default, value = _field(defaults, name), _field(flag_values["config"].value, name)
    except (KeyError, AttributeError):
      continue  # a field the config has not: reported by the parser
    numeric = isinstance(default, tuple) and default and all(
        isinstance(x, int | float) for x in default)
    if numeric and (not isinstance(value, tuple) or len(value) != len(default)):
      values = " ".join(a for a in argv if a.startswith(f"--config.{name}="))
      raise flags.IllegalFlagValueError(
          f"{values}: config.{name} takes {len(default)} numbers, like its default "
          f"{default}, and got {value!r}; give the whole tuple once (e.g. "
          f"--config.{name}=\"{default}\"): a repeated tuple flag is joined, not replaced")


def _packaged_config(arg: str) -> str:
  if arg.startswith("--config="):
    return "--config=" + config_path(arg.partition("=")[2])
  return arg


def _check_config_loaded(argv: list[str]) -> None:
  """A `--config` file that could not be loaded (a missing path) surfaces only when the config
  is first used; say so now, as a command-line error."""
  if "config" not in FLAGS or type(FLAGS["config"].value).__name__ != "_ErrorConfig":
    return
  given = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), "")
  path = given.split(":", 1)[0]
  reason = "no such file" if path and not os.path.exists(path) else "it does not load"
  raise OSError(f"--config={given}: {reason} (a config file such as configs/fpm.py, or the "
                f"name of a packaged one: {', '.join(packaged_configs())}; optionally followed "
                "by :variant)")


def _flag_error(e: Exception, argv: list[str]) -> str:
  """The one-paragraph message of a bad command line."""
  text = str(e)
  if "Traceback (most recent call last)" in text:  # an error inside the config file's code
    flag = text.split(":", 1)[0].removeprefix("flag ")
    last = [line for line in text.strip().splitlines() if line.strip()][-1]
    return f"{flag}: {last.split(': ', 1)[-1] if ': ' in last else last}"
  if isinstance(e, AttributeError | KeyError):  # an unknown field: name it and its suggestion
    raw = e
    while isinstance(raw, BaseException):  # ml_collections wraps the KeyError that names it
      raw = raw.args[0] if raw.args else str(raw)
    raw = str(raw)
    name = raw.split("'")[1] if raw.count("'") >= 2 else raw.strip("\"' ")
    hint = raw.split("\n", 1)[1].strip() if "\n" in raw else ""
    culprit = next((a for a in argv[1:] if a.startswith("--config.")
                    and a.split("=")[0].split(".")[-1] == name), None)
    if culprit:
      return (f"{culprit}: the config has no field {name!r}" + (f". {hint}" if hint else ""))
  if isinstance(e, flags.Error | OSError):
    return text
  return f"{type(e).__name__}: {text}"


class CommandLineError(Exception):
  """A command line that cannot work: one paragraph naming the flag, exit status 2."""


def report_errors(main):
  """`main` with the user errors turned into one paragraph on stderr and exit status 1."""

  def wrapped(argv):
    try:
      return main(argv)
    except CommandLineError as e:
      sys.stderr.write(f"error: {e}\n")
      sys.exit(2)
    except USER_ERRORS as e:
      if FLAGS.traceback:
        raise
      logging.error("%s: %s", type(e).__name__, e)
      sys.stderr.write(f"\nerror: {e}\n(--traceback shows where it was raised)\n")
      sys.exit(1)

  return wrapped
