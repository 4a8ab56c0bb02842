"""A run's config checked once, before anything is written: every field's type and range.

`check(config)` raises `ConfigError` naming the field (`config.batch_size`, or
`config.phases[1].optimizer.learning_rate` for a phase's override), the value and what is
allowed. Fields a system adds (`model.*`, `loss.*`) are its own to check; this covers the fields
every run has (`config_base.base_config`) and the phases' overrides of them.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

from fashion_jax import config_base
from fashion_jax import phases as phases_lib
from fashion_jax.data import schema


class ConfigError(ValueError):
  """A config value out of its type or range; the message names the field."""


def _int(lo: int | None = None) -> Callable:
  def ok(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and (lo is None or v >= lo)
  return _rule(ok, "an integer" + (f" >= {lo}" if lo is not None else ""))


def _number(lo: float, *, open_lo: bool, hi: float | None = None) -> Callable:
  def ok(v):
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or v != v:
      return False
    return (v > lo if open_lo else v >= lo) and (hi is None or v <= hi)
  bound = f"{'>' if open_lo else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
  return _rule(ok, f"a number {bound}")


def _one_of(*choices) -> Callable:
  return _rule(lambda v: v in choices, f"one of {list(choices)}")


def _pair(item: Callable, what: str) -> Callable:
  def ok(v):
    return isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2 and all(
        item(x) is None for x in v)
  return _rule(ok, f"a pair of {what}")


def _rule(ok: Callable, expected: str) -> Callable:
  """A check: value -> None when allowed, else the sentence saying what is expected."""
  return lambda v: None if ok(v) else expected


POSITIVE_INT, COUNT = _int(1), _int(0)
POSITIVE = _number(0, open_lo=True)
FRACTION = _number(0, open_lo=False, hi=1)

RUN_FIELDS = {
    "seed": _int(),
    "batch_size": POSITIVE_INT,
    "eval_batch_size": COUNT,
    "num_epochs": POSITIVE,
    "num_devices": COUNT,
    "max_steps_per_phase": COUNT,
    "early_stopping_patience": COUNT,
    "log_every_steps": POSITIVE_INT,
    "eval_every_epochs": POSITIVE,
    "checkpoint_every_steps": POSITIVE_INT,
    "stop_sync_every_steps": POSITIVE_INT,
    "heartbeat_timeout_seconds": POSITIVE_INT,
    "eval.baseline_examples": COUNT,
}
DATA_FIELDS = {
    "image_size": _pair(POSITIVE_INT, "integers >= 1 (height, width)"),
    "crop": _one_of("bbox", "image"),
    "bbox_margin": _number(0, open_lo=False),
    "domain": _one_of("", "shop", "street"),
    "eval_domain": _one_of("", "shop", "street"),
    "street_label_fraction": FRACTION,
    "categories": _rule(
        lambda v: isinstance(v, Sequence) and not isinstance(v, str)
        and all(c in schema.FASHIONAI_CATEGORIES for c in v),
        f"a tuple of FashionAI categories from {list(schema.FASHIONAI_CATEGORIES)} (() for all)"),
    "tuples": _one_of("", "pair", "triplet", "views"),
    "segmented": _one_of("", "white", "black"),
    "num_threads": POSITIVE_INT,
    "prefetch": COUNT,
    "eval_max_examples": COUNT,
    "num_folds": COUNT,
    "fold": COUNT,
    "holdout.validation": FRACTION,
    "holdout.test": FRACTION,
    "augment.scale": _pair(POSITIVE, "numbers > 0"),
    "augment.rotation": _number(0, open_lo=False),
    "augment.translate": FRACTION,
    "augment.colour": _number(0, open_lo=False),
}
OPTIMIZER_FIELDS = {
    "name": _one_of("adam", "adamw", "sgd"),
    "learning_rate": POSITIVE,
    "schedule": _one_of("constant", "step", "cosine"),
    "decay_every_epochs": POSITIVE,
    "decay_factor": _number(0, open_lo=True, hi=1),
    "warmup_steps": COUNT,
    "decay_steps": COUNT,
    "grad_clip_norm": _number(0, open_lo=False),
    "weight_decay": _number(0, open_lo=False),
}
# float16 overflows gradients without loss scaling, which this trainer does not do; bfloat16 has
# float32's exponent range and needs none.
MODEL_FIELDS = {"dtype": _rule(
    lambda v: v in ("float32", "bfloat16"),
    "'float32' or 'bfloat16' (float16 needs loss scaling, which this trainer does not do: use "
    "bfloat16, whose float32 exponent range needs none)"),
    "from_scratch": _rule(lambda v: isinstance(v, bool), "True or False")}


def _get(config, dotted: str):
  node = config
  for part in dotted.split("."):
    if part not in node:
      return _MISSING
    node = node[part]
  return node


_MISSING = object()


def _check_fields(config, fields: dict, where: str) -> None:
  for name, rule in fields.items():
    value = _get(config, name)
    if value is _MISSING:
      continue  # a field an older config lacks keeps its default where it is read
    expected = rule(value)
    if expected:
      raise ConfigError(f"{where}.{name} = {value!r}: expected {expected}")


def check(config) -> None:
  """Raises `ConfigError` for the first field of `config` (or of a phase) out of range."""
  _check_fields(config, RUN_FIELDS, "config")
  _check_fields(config.data, DATA_FIELDS, "config.data")
  _check_fields(config.optimizer, OPTIMIZER_FIELDS, "config.optimizer")
  _check_fields(config.model, MODEL_FIELDS, "config.model")
  folds, fold = config.data.get("num_folds", 0), config.data.get("fold", 0)
  if folds and not fold < folds:
    raise ConfigError(f"config.data.fold = {fold}: expected < config.data.num_folds = {folds}")
  _check_phases(config)
  _check_evals(config)


def _check_phases(config) -> None:
  try:
    specs = phases_lib.phase_specs(config)
  except ValueError as e:
    raise ConfigError(f"config.phases: {e}") from None
  for i, spec in enumerate(specs):
    where = f"config.phases[{i}]" if config.get("phases") else "config"
    length = "num_steps" if "num_steps" in spec else "num_epochs"
    expected = (POSITIVE_INT if length == "num_steps" else POSITIVE)(spec[length])
    if expected:
      raise ConfigError(f"{where}.{length} = {spec[length]!r}: expected {expected}")
    for part, fields in (("data", DATA_FIELDS), ("optimizer", OPTIMIZER_FIELDS)):
      overrides = dict(spec.get(part) or {})
      if overrides:
        merged = phases_lib.merged(config[part], overrides, f"{where}.{part}")
        _check_fields(merged, {k: v for k, v in fields.items() if k.split(".")[0] in overrides},
                      f"{where}.{part}")


def check_pretrained(config) -> None:
  """Refuses to train on a real dataset while a network the paper starts from ImageNet weights
  (an empty `config.model.pretrained` entry) would start from random ones, unless
  `config.model.from_scratch` says so. The synthetic set trains from scratch by design."""
  dataset = config_base.dataset_name(config.data)
  if dataset == "fashion_synth" or config.model.get("from_scratch", False):
    return
  pretrained = config.model.get("pretrained") or {}
  if isinstance(pretrained, str):  # configs written before several loads were supported
    pretrained = {config.model.get("pretrained_at", "backbone"): pretrained}
  missing = [name for name, path in dict(pretrained).items() if not path]
  if missing:
    flags = " ".join(f"--config.model.pretrained.{name}=FILE" for name in missing)
    raise ConfigError(
        f"config.model.pretrained.{missing[0]} is empty: the {config.system} paper starts "
        f"{'these networks' if len(missing) > 1 else 'this network'} ({', '.join(missing)}) "
        f"from ImageNet weights, and training on {dataset} from random weights does not "
        f"reproduce it. Convert the weights as docs/pretrained.md shows and pass {flags}, or "
        "pass --config.model.from_scratch=True to train from random weights on purpose.")


# What an evaluator (`config.evals`) may change: which test records are scored, never training.
EVAL_DATA_FIELDS = ("eval_domain", "categories", "test_split", "eval_max_examples")
# What `--mode=eval --config.F=V` may change in a run's config: the evaluated data (also another
# copy of it, or the validation role), the batch, devices and baselines; never the model or how
# an image becomes its input. `NAMING` ones name the results file.
EVAL_MODE_NAMING = tuple(f"data.{f}" for f in (*EVAL_DATA_FIELDS, "eval_split", "data_dir")) + (
    "evals", "eval.baselines", "eval.baseline_examples")
EVAL_MODE_FIELDS = (*EVAL_MODE_NAMING, "batch_size", "eval_batch_size", "num_devices",
                    "progress")


def _check_evals(config) -> None:
  names = set()
  for i, entry in enumerate(config.get("evals") or []):
    where = f"config.evals[{i}]"
    entry = dict(entry)
    name = entry.get("name")
    if not isinstance(name, str) or not name.isidentifier() or name in names:
      raise ConfigError(f"{where}.name = {name!r}: expected a new identifier (it names "
                        "results_test_<name>.json)")
    names.add(name)
    unknown = sorted(set(entry) - {"name", "data"})
    if unknown:
      raise ConfigError(f"{where}: unknown keys {unknown}; an evaluator has name and data")
    overrides = dict(entry.get("data") or {})
    bad = sorted(set(overrides) - set(EVAL_DATA_FIELDS))
    if bad:
      raise ConfigError(f"{where}.data.{bad[0]}: an evaluator may set only "
                        f"{list(EVAL_DATA_FIELDS)}")
    merged = phases_lib.merged(config.data, overrides, f"{where}.data")
    _check_fields(merged, {k: v for k, v in DATA_FIELDS.items() if k in overrides},
                  f"{where}.data")
