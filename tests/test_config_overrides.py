"""Command-line overrides of tuple fields: every tuple field of every config (paper settings and
`:runlocal`) is replaced by what the command line gives, and a numeric tuple of another length
(a wrong count, or a tuple flag given twice, which ml_collections joins) is refused."""

import glob
import os
import sys

import pytest
from absl import flags
from ml_collections import config_flags

from fashion_jax import cli

CONFIGS = sorted(p for p in glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs",
                                                   "*.py")) if not p.endswith("__init__.py"))


def tuple_fields(config, prefix=""):
  for key, value in config.items():
    if isinstance(value, tuple):
      yield prefix + key, value
    elif hasattr(value, "items"):
      yield from tuple_fields(value, f"{prefix}{key}.")


def parse(argv):
  """Parses `argv` with a fresh flag set, as the entry points do; returns the config.
  (ml_collections finds the `--config.*` overrides in sys.argv.)"""
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=flag_values, lock_config=True)
  saved, sys.argv = sys.argv, ["prog", *argv]
  try:
    flag_values(sys.argv)
    cli.check_tuple_overrides(flag_values, sys.argv)
  finally:
    sys.argv = saved
  return flag_values.config


def replacement(default: tuple) -> tuple:
  """A tuple of the same kind as `default` and different from it."""
  if default and all(isinstance(x, int | float) for x in default):
    return tuple(type(x)(x + 1) for x in default)
  if default and all(isinstance(x, str) for x in default):
    return default[:1]
  return ()


@pytest.mark.parametrize("variant", ["", ":runlocal"])
@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_every_tuple_field_is_replaced_not_appended(path, variant):
  defaults = cli.load_config_file(path + variant)
  fields = dict(tuple_fields(defaults))
  assert fields  # every config has some (image size at least)
  for name, default in fields.items():
    if default and not all(isinstance(x, int | float | str) for x in default):
      continue  # tuples of dicts (evals) are given as Python literals, tested below
    new = replacement(default)
    config = parse([f"--config={path}{variant}", f"--config.{name}={new!r}"])
    value = cli._field(config, name)
    assert tuple(value) == new, (name, default, value)


def test_an_evaluator_list_is_replaced():
  path = next(p for p in CONFIGS if p.endswith("fpm.py"))
  config = parse([f"--config={path}", "--config.evals=({'name': 'dress', 'data': "
                  "{'categories': ('dress',)}},)"])
  assert [e["name"] for e in config.evals] == ["dress"]


@pytest.mark.parametrize("argv, message", [
    (["--config.data.image_size=(16,16)", "--config.data.image_size=(8,8)"],
     r"takes 2 numbers, like its default \(128, 128\), and got \(16, 16, 8, 8\)"),
    (["--config.data.image_size=(16,16,3)"], r"takes 2 numbers"),
    (["--config.model.feature_widths=(8,8)"], r"config.model.feature_widths takes 4 numbers"),
])
def test_a_numeric_tuple_of_another_length_is_refused(argv, message):
  path = next(p for p in CONFIGS if p.endswith("fpm.py"))
  with pytest.raises(flags.IllegalFlagValueError, match=message):
    parse([f"--config={path}:runlocal", *argv])
