"""Timing in a worker process of its own, one framework at a time.

  with TimingWorker("resnet50 (JAX)", build_calls, "jax", "resnet50") as worker:
    worker.time("step"), worker.time("step")  # warm-up
    seconds = [worker.time("step") for _ in range(5)]

`build(*args)` runs in the worker (a spawned process: it must be a module-level function) and
returns `(calls, info)`: `calls[name]` is a zero-argument callable that does the work and waits
for it, `info` anything picklable for the parent (`worker.info`). The worker times each call
itself and sends the seconds back.

Why a process per side: on this project's 2-core machine a PyTorch process merely alive beside a
JAX one (idle between its own steps) doubled a JAX step (all of it page-fault system time), and
in one shared process each framework's calls paid for the other's allocations.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable


def _serve(conn, build: Callable, args: tuple) -> None:
  """Worker process: builds the calls, replies ("ready", info), then runs the named call of each
  request and replies ("seconds", s), until a None request."""
  try:
    calls, info = build(*args)
    conn.send(("ready", info))
    while (name := conn.recv()) is not None:
      call = calls[name]
      start = time.perf_counter()
      call()
      conn.send(("seconds", time.perf_counter() - start))
  except BaseException as e:  # noqa: BLE001 - sent to the parent, which raises it with context
    frame = traceback.extract_tb(e.__traceback__)[-1]
    conn.send(("error", f"{type(e).__name__}: {e} (at {frame.filename}:{frame.lineno})"))


class TimingWorker:
  """The calls of `build(*args)`, held by a worker process of its own; `what` names it in
  errors."""

  def __init__(self, what: str, build: Callable, *args):
    self.what = what
    context = multiprocessing.get_context("spawn")
    self.conn, child = context.Pipe()
    self.process = context.Process(target=_serve, args=(child, build, args), daemon=True)
    self.process.start()
    self.info = self._receive("ready")

  def time(self, name: str) -> float:
    """Runs call `name` once in the worker; returns its seconds as the worker timed them."""
    try:
      self.conn.send(name)
    except OSError as e:
      raise RuntimeError(f"{self.what}: the worker process is gone ({e})") from None
    return self._receive("seconds")

  def close(self, wait: bool = True) -> None:
    """Stops the worker: asks it to finish (and waits up to a minute when `wait`), else kills."""
    try:
      if wait and self.process.is_alive():
        self.conn.send(None)
        self.process.join(timeout=60)
    except OSError:  # the worker ended between the check and the send
      pass
    if self.process.is_alive():
      self.process.kill()
      self.process.join()

  def __enter__(self) -> TimingWorker:
    return self

  def __exit__(self, exc_type, *exc) -> None:
    self.close(wait=exc_type is None)  # leaving on an error: do not wait for the worker

  def _receive(self, expected: str):
    while not self.conn.poll(1.0):
      if not self.process.is_alive():
        raise RuntimeError(f"{self.what}: the worker process died (exit code "
                           f"{self.process.exitcode}; out of memory?)")
    kind, value = self.conn.recv()
    if kind != expected:
      raise RuntimeError(f"{self.what}: {value}")
    return value
