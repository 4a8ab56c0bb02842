"""Run logging: metrics as JSON lines and TensorBoard events, and a console progress bar."""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import re
import sys
import time

import numpy as np
import tqdm
from absl import logging as absl_logging

from fashion_jax import workdir as workdir_files


class _QuietLibraries(logging.Filter):
  """Drops the INFO chatter of orbax (every save and restore step) from the console."""

  def filter(self, record):
    return record.levelno >= logging.WARNING or "orbax" not in record.pathname


def quiet_library_logs() -> None:
  """Keeps library INFO chatter off the console of the command-line tools."""
  absl_logging.get_absl_handler().python_handler.addFilter(_QuietLibraries())


def flatten(tree: dict, prefix: str = "") -> dict:
  """Nested metric dict -> {'a/b': value}; lists and arrays kept as they are."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(flatten(value, f"{name}/"))
    else:
      out[name] = value
  return out


def jsonable(value):
  if isinstance(value, np.ndarray | np.generic):
    value = value.tolist()
  if isinstance(value, float) and not math.isfinite(value):
    return None  # JSON has no NaN; null reads as "undefined"
  if isinstance(value, list):
    return [jsonable(v) for v in value]
  return value


def _row_step(line: str) -> int:
  """The step of a metrics.jsonl row (-1 for a line that is not a row: a torn last write)."""
  try:
    return int(json.loads(line)["step"])
  except (ValueError, KeyError, TypeError):
    return -1


class MetricWriter:
  """Appends to `<workdir>/metrics.jsonl` and writes TensorBoard scalars (process 0 only)."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(workdir_files.path(workdir, workdir_files.METRICS), "a")  # noqa: SIM115
      self._tb_dir = workdir_files.path(workdir, workdir_files.TENSORBOARD)
      self._tb = self._tensorboard()

  def _tensorboard(self, purge_step: int | None = None):
    from tensorboardX import SummaryWriter  # deferred: heavy import

    return SummaryWriter(self._tb_dir, purge_step=purge_step)

  def supersede_after(self, step: int) -> None:
    """Moves the rows of steps after `step` (logged before an interruption, trained again
    after the resume from `step`) and any torn line to `metrics.superseded.jsonl`, so
    `metrics.jsonl` has one row per step and split and nothing logged is lost. TensorBoard's
    events of those steps are purged the way TensorBoard reads them: a new event file starts
    with a session start at `step + 1`, which hides the older files' events from that step.
    """
    if not self.enabled:
      return
    if step > 0:  # TensorBoard hides the events of steps > `step` of the earlier files
      self._tb.close()
      self._tb = self._tensorboard(purge_step=step + 1)
    path = self._jsonl.name
    with open(path) as f:
      lines = f.readlines()
    kept = [line for line in lines if 0 <= _row_step(line) <= step]
    later = [line for line in lines if not 0 <= _row_step(line) <= step]
    if not later:
      return
    with open(os.path.join(os.path.dirname(path), "metrics.superseded.jsonl"), "a") as f:
      f.writelines(later)
    self._jsonl.close()
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(kept)
    os.replace(tmp, path)
    self._jsonl = open(path, "a")  # noqa: SIM115

  def write(self, step: int, split: str, metrics: dict) -> None:
    if not self.enabled:
      return
    flat = flatten(metrics)
    record = {"step": int(step), "split": split, "time": time.time(),
              **{k: jsonable(v) for k, v in flat.items()}}
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    for name, value in flat.items():
      # TensorBoard takes finite scalars with tag-safe names; the JSON line keeps everything.
      if np.ndim(value) == 0 and isinstance(value, int | float | np.number) and np.isfinite(value):
        tag = re.sub(r"[^\w./-]", "_", f"{split}/{name}")
        self._tb.add_scalar(tag, float(value), int(step))
    self._tb.flush()

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      self._tb.close()


def on_terminal() -> bool:
  """Whether progress bars can redraw in place (stderr is a terminal, not a file or pipe)."""
  return sys.stderr.isatty()


class Progress:
  """Training progress: a tqdm bar over steps (images/s, loss, ETA) on a terminal; elsewhere
  (`config.progress=False`, or stderr a file or pipe, as under a scheduler) one log line every
  `log_every` steps: step, loss, images/s and ETA. Only the chief (`is_chief`) shows either."""

  def __init__(self, total: int, initial: int, batch_size: int, desc: str, enabled: bool,
               log_every: int = 0, is_chief: bool = True):
    self.batch_size, self.total, self.desc = batch_size, total, desc
    bar = enabled and is_chief and on_terminal()
    self.bar = tqdm.tqdm(total=total, initial=initial, desc=desc, unit="step",
                         disable=not bar, dynamic_ncols=True, smoothing=0.1)
    self.log_every = log_every if is_chief and not bar else 0
    self._last_time, self._last_step = time.perf_counter(), initial
    self._logged_time, self._logged_step = self._last_time, initial

  def update(self, step: int, loss: float | None = None) -> None:
    self.bar.update(step - self.bar.n)
    now = time.perf_counter()
    if now - self._last_time > 1.0:
      rate = (step - self._last_step) * self.batch_size / (now - self._last_time)
      post = {"img/s": f"{rate:.1f}"}
      if loss is not None:
        post["loss"] = f"{loss:.4g}"
      self.bar.set_postfix(post, refresh=False)
      self._last_time, self._last_step = now, step
    if self.log_every and step % self.log_every == 0 and step > self._logged_step:
      self._log_line(step, loss, now)

  def _log_line(self, step: int, loss: float | None, now: float) -> None:
    steps_per_s = (step - self._logged_step) / max(now - self._logged_time, 1e-9)
    eta = datetime.timedelta(seconds=round((self.total - step) / max(steps_per_s, 1e-9)))
    loss_text = "" if loss is None else f"loss {loss:.4g}, "
    absl_logging.info("%s: step %d/%d (%.0f%%), %s%.1f images/s, ETA %s", self.desc, step,
                      self.total, 100.0 * step / max(self.total, 1), loss_text,
                      steps_per_s * self.batch_size, eta)
    self._logged_time, self._logged_step = now, step

  def close(self) -> None:
    self.bar.close()
