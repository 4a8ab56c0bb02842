"""The files and folders of a run's workdir: every name in one place, and nothing else builds
these paths.

  W/config.json              the run's config (written once its state exists)
  W/dataset_spec.json        the dataset's names and label layout: the model is rebuilt from the
                             workdir alone, without the dataset on disk
  W/metrics.jsonl            one JSON row per logged training step and per periodic evaluation
  W/tensorboard/             the same scalars as TensorBoard event files
  W/checkpoints/<step>/      the latest train states (resume)
  W/best/<step>/             the variables with the best validation metric (evaluation, predict,
                             export)
  W/unreadable_checkpoints/  checkpoints that did not restore, set aside with the reason
  W/set_aside_checkpoints/   checkpoints after the step a `--restart_from` restarted from
  W/early_stopped.json       written when early stopping ended training
  W/results_<role>.json      the final evaluation: every method's metrics (role "test"; an
                             evaluator's "test_<name>"; `--mode=eval` with data overrides
                             "test@<overrides>"); an earlier file with other numbers is kept
                             as results_<role>.<n>.json
  W/predictions_<role>.png   the system's picture of the final evaluation's predictions
  W/ablation_seconds.json    the training time of a `tools.ablate` pair
  W/run.lock                 who uses the workdir now (`workdir_lock`): one run at a time
"""

from __future__ import annotations

import json
import os

import ml_collections

from fashion_jax.data import schema

CONFIG = "config.json"
DATASET_SPEC = "dataset_spec.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
CHECKPOINTS = "checkpoints"
BEST = "best"
UNREADABLE = "unreadable_checkpoints"
SET_ASIDE = "set_aside_checkpoints"
EARLY_STOPPED = "early_stopped.json"
ABLATION_SECONDS = "ablation_seconds.json"
LOCK = "run.lock"


def path(workdir: str, name: str) -> str:
  """`workdir`/`name` for one of this module's names."""
  return os.path.join(workdir, name)


def results(workdir: str, role: str = "test") -> str:
  return os.path.join(workdir, f"results_{role}.json")


def picture(workdir: str, role: str = "test") -> str:
  return os.path.join(workdir, f"predictions_{role}.png")


def set_aside(workdir: str, name: str) -> str:
  """Where a checkpoint moved aside by `--restart_from` goes (`best_<step>` for a best one)."""
  return os.path.join(workdir, SET_ASIDE, name)


def unreadable(workdir: str, name: str) -> str:
  """Where an unreadable checkpoint `name` (its step, maybe with a suffix) is set aside."""
  return os.path.join(workdir, UNREADABLE, name)


def save_config(config, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(path(workdir, CONFIG), "w") as f:
    f.write(config.to_json_best_effort(indent=2))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  file = path(workdir, CONFIG)
  if not os.path.exists(file):
    raise FileNotFoundError(f"{file} not found: is {workdir!r} the workdir of a run?")
  with open(file) as f:
    return ml_collections.ConfigDict(json.load(f))


def save_dataset_spec(spec: schema.DatasetSpec, workdir: str) -> None:
  with open(path(workdir, DATASET_SPEC), "w") as f:
    f.write(spec.to_json())


def load_dataset_spec(workdir: str) -> schema.DatasetSpec:
  file = path(workdir, DATASET_SPEC)
  if not os.path.exists(file):
    raise FileNotFoundError(f"{file} not found: is {workdir!r} the workdir of a run?")
  with open(file) as f:
    return schema.DatasetSpec.from_json(f.read())


def keep_earlier(file: str, new_text: str) -> str | None:
  """Before `file` is rewritten with `new_text`: an existing `file` with other content is moved
  to `<stem>.<n><ext>` (the first free n) and that path returned, so no result is lost."""
  if not os.path.exists(file):
    return None
  with open(file) as f:
    if f.read() == new_text:
      return None
  stem, ext = os.path.splitext(file)
  n = 1
  while os.path.exists(f"{stem}.{n}{ext}"):
    n += 1
  os.replace(file, f"{stem}.{n}{ext}")
  return f"{stem}.{n}{ext}"


def _flat(tree: dict, prefix: str = "") -> dict:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[prefix + key] = value
  return out


def config_differences(stored: dict, config, prefix: str = "") -> list[str]:
  """"field: A in the run, B now" for each field (under `prefix`, e.g. "model.") that the run's
  stored config (config.json as a dict) and `config` both have with another value. A field one
  of them lacks was added or removed since, with its old behaviour as default."""
  now = _flat(json.loads(config.to_json_best_effort()))
  before = _flat(json.loads(json.dumps(stored)))
  return [f"{k}: {before[k]!r} in the run, {now[k]!r} now"
          for k in sorted(before.keys() & now.keys())
          if k.startswith(prefix) and before[k] != now[k]]
