"""One run per workdir: a lock file naming the process that uses it.

Training and `--mode=eval` hold `W/run.lock` ({host, pid, process start, command, since})
while they write into W. A second command on the same workdir is refused with one paragraph
naming the first; a lock whose process is gone (this host, PID no longer running, or running
but started at another time: a reused PID) is taken over with a warning. A lock from another
host cannot be checked from here: the message says how to remove it once that run is known to
have ended. With several processes, process 0 holds the lock for all.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys

import jax
from absl import logging

from fashion_jax import workdir as workdir_files


class WorkdirInUseError(OSError):
  """Another live process holds the workdir (an OSError, as a busy resource is)."""


FRESH_SECONDS = 5.0  # an unreadable lock younger than this is being written, not stale


def _age(path: str) -> float:
  try:
    return datetime.datetime.now().timestamp() - os.path.getmtime(path)
  except OSError:
    return 0.0


def _process_start(pid: int) -> str | None:
  """The kernel's start time of `pid` (Linux /proc), to tell a reused PID; None elsewhere."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _alive(holder: dict) -> bool:
  """Whether the holder of a lock written on this host is still running."""
  pid = int(holder.get("pid", -1))
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's live process
    return True
  except (OSError, ValueError, OverflowError):
    return False
  start = _process_start(pid)
  return start is None or holder.get("process_start") in (None, start)


def _describe(holder: dict) -> str:
  return (f"process {holder.get('pid')} on host {holder.get('host')} since "
          f"{holder.get('since')} ({holder.get('command', '?')})")


def _me() -> dict:
  return {"host": socket.gethostname(), "pid": os.getpid(),
          "process_start": _process_start(os.getpid()),
          "since": datetime.datetime.now().isoformat(timespec="seconds"),
          "command": " ".join(sys.argv)[:300]}


def acquire(workdir: str) -> str:
  """Takes the lock of `workdir` (see the module docstring); returns its path."""
  os.makedirs(workdir, exist_ok=True)
  path = workdir_files.path(workdir, workdir_files.LOCK)
  me = json.dumps(_me())
  for _ in range(3):  # a stale lock is replaced, then taken as a new one
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      try:
        with open(path) as f:
          holder = json.load(f)
      except (OSError, ValueError):  # being written right now, or by a process that died
        holder = {}
        if _age(path) < FRESH_SECONDS:
          raise WorkdirInUseError(f"{workdir}: another run is starting there ({path} was "
                                  "just created); use another --workdir") from None
      if holder and (holder.get("host") != socket.gethostname() or _alive(holder)):
        elsewhere = holder.get("host") != socket.gethostname()
        raise WorkdirInUseError(
            f"{workdir} is in use by {_describe(holder)}: two runs on one workdir would "
            "write the same checkpoints and metrics. Wait for it to end, or use another "
            "--workdir" + (f"; if that run is known to have ended, remove {path}"
                           if elsewhere else "") + ".") from None
      if holder:
        logging.warning("taking over the lock of %s from %s, which is no longer running",
                        workdir, _describe(holder))
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
      continue
    with os.fdopen(fd, "w") as f:
      f.write(me)
    return path
  raise WorkdirInUseError(f"{workdir}: could not take {path}; another run is starting there")


def release(path: str) -> None:
  """Removes the lock if this process still holds it."""
  try:
    with open(path) as f:
      if json.load(f).get("pid") != os.getpid():
        return
    os.remove(path)
  except (OSError, ValueError):
    pass


@contextlib.contextmanager
def held(workdir: str):
  """The workdir's lock for the duration of the block (process 0 only)."""
  if jax.process_index() != 0:
    yield
    return
  path = acquire(workdir)
  try:
    yield
  finally:
    release(path)
