"""One run per workdir: a second command on a workdir that a live process uses is refused,
naming that process; a lock left by a dead process is taken over with a warning."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from fashion_jax import train, workdir_lock
from fashion_jax import workdir as workdir_files

HOLD = """
import sys, time
from fashion_jax import workdir_lock
workdir_lock.acquire(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


def _holder(workdir):
  process = subprocess.Popen([sys.executable, "-c", HOLD, workdir], stdout=subprocess.PIPE,
                             text=True)
  assert process.stdout.readline().strip() == "held"
  return process


def test_a_second_run_is_refused_while_the_first_lives_and_takes_over_after(
    tiny_fpm_config, tmp_path, caplog):
  workdir = str(tmp_path / "run")
  first = _holder(workdir)
  try:
    with pytest.raises(workdir_lock.WorkdirInUseError,
                       match=rf"run is in use by process {first.pid} on host "
                             rf"{socket.gethostname()} since .*Wait for it to end"):
      train.train_and_evaluate(tiny_fpm_config, workdir)
    assert os.listdir(workdir) == [workdir_files.LOCK]  # the refused run wrote nothing
  finally:
    first.kill()
    first.wait()
  tiny_fpm_config.max_steps_per_phase = 1
  train.train_and_evaluate(tiny_fpm_config, workdir)  # the dead holder's lock is taken over
  assert f"from process {first.pid}" in caplog.text and "no longer running" in caplog.text
  assert not os.path.exists(workdir_files.path(workdir, workdir_files.LOCK))  # released


def test_a_reused_pid_or_another_host_is_told_apart(tmp_path):
  workdir = str(tmp_path)
  path = workdir_files.path(workdir, workdir_files.LOCK)
  # This very process, but "started" at another time: its PID was reused, the lock is stale.
  with open(path, "w") as f:
    json.dump({"host": socket.gethostname(), "pid": os.getpid(), "process_start": "1"}, f)
  assert workdir_lock.acquire(workdir) == path
  workdir_lock.release(path)
  assert not os.path.exists(path)
  # Another host's lock cannot be checked from here: refused, saying how to remove it.
  with open(path, "w") as f:
    json.dump({"host": "elsewhere", "pid": 1, "since": "2026-12-07T10:00:00"}, f)
  with pytest.raises(workdir_lock.WorkdirInUseError, match=rf"host elsewhere .*remove {path}"):
    workdir_lock.acquire(workdir)
  # An unreadable lock is being written right now (refused), or was left half-written (taken).
  open(path, "w").close()
  with pytest.raises(workdir_lock.WorkdirInUseError, match="another run is starting there"):
    workdir_lock.acquire(workdir)
  old = time.time() - 60
  os.utime(path, (old, old))
  assert workdir_lock.acquire(workdir) == path


def test_the_command_line_says_it_in_one_paragraph(tmp_path):
  workdir = str(tmp_path / "run")
  first = _holder(workdir)
  try:
    out = subprocess.run([sys.executable, "-m", "fashion_jax.main", "--config=fpm:runlocal",
                          f"--workdir={workdir}"], capture_output=True, text=True, timeout=300)
  finally:
    first.kill()
    first.wait()
  assert out.returncode == 1 and "Traceback" not in out.stderr
  assert f"is in use by process {first.pid}" in out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith("(--traceback")  # nothing after it
