"""What the command-line tools share: a flag parser that names a bad `--config.*` override, and
one-paragraph errors with a distinct exit status instead of tracebacks.

Exit statuses: 0 done; 1 an error the message explains (bad input, config or checkpoint; a
diverged run); 2 a bad command line; 128 + N stopped by signal N after saving a checkpoint
(rerun to resume). `--traceback` shows the full traceback of an error as well.
"""

from __future__ import annotations

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
  """absl's parsing, with a bad `--config.x=v` override named instead of a traceback. Every
  command line of the package parses its flags here, before JAX starts, so this is also where
  the package's XLA options are applied (`xla_options`; `FASHION_JAX_XLA_OPTIONS=off` or your
  own value in `XLA_FLAGS` overrides them)."""
  xla_options.apply()
  try:
    return FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    name = str(e).strip("\"' ")
    culprit = next((a for a in overrides if name and name in a.split("=")[0]), None)
    if culprit and isinstance(e, AttributeError | KeyError):
      message = f"{culprit}: the config has no field {name!r}"
    else:
      message = f"{type(e).__name__}: {e}" if not isinstance(e, flags.Error) else str(e)
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


def report_errors(main):
  """`main` with the user errors turned into one paragraph on stderr and exit status 1."""

  def wrapped(argv):
    try:
      return main(argv)
    except USER_ERRORS as e:
      if FLAGS.traceback:
        raise
      logging.error("%s: %s", type(e).__name__, e)
      sys.stderr.write(f"\nerror: {e}\n(--traceback shows where it was raised)\n")
      sys.exit(1)

  return wrapped
