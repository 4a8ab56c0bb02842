"""Two JAX processes (one CPU device each, gloo collectives over loopback, each reading its own
half of every global batch) train exactly as one process with two devices: the same mesh, the
same global batches, the same reductions. Checked bit for bit: the per-device computations are
identical and a two-operand all-reduce sum is exact whatever the order."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from fashion_jax import run
from fashion_jax import workdir as workdir_files


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _command(config_file, workdir):
  return [sys.executable, "-m", "fashion_jax.main", f"--config={config_file}:runlocal",
          f"--workdir={workdir}", "--config.num_devices=0", "--config.max_steps_per_phase=4",
          "--config.log_every_steps=1"]


def _env(devices: int) -> dict:
  return dict(os.environ, JAX_PLATFORMS="cpu",
              XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def _rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in f]


def _params(workdir):
  """The final parameters, restored into this process's devices (a template is needed: the
  checkpoint was written for another device topology)."""
  r = run.Run(workdir_files.load_config(workdir), workdir)
  try:
    train_state, _ = r.restore_or_init()
    return jax.tree.map(np.asarray, train_state.params)
  finally:
    r.close()


def test_two_processes_train_as_one(toy_config_file, tmp_path):
  one, two = str(tmp_path / "one"), str(tmp_path / "two")
  single = subprocess.run(_command(toy_config_file, one), env=_env(2), capture_output=True,
                          text=True, timeout=600)
  assert single.returncode == 0, single.stderr[-3000:]
  port = _free_port()
  procs = [subprocess.Popen(
      _command(toy_config_file, two) + ["--distributed", f"--coordinator_address=localhost:{port}",
                                        "--num_processes=2", f"--process_id={i}"],
      env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outputs, strict=True):
    assert p.returncode == 0, err[-3000:]
  assert "mesh {'data': 2}" in outputs[0][1]
  assert _rows(one) == _rows(two)  # every logged loss and metric, train and eval
  assert [r["step"] for r in _rows(two) if r["split"] == "train"] == [1, 2, 3, 4]
  jax.tree.map(np.testing.assert_array_equal, _params(one), _params(two))
  with open(os.path.join(one, "results_test.json")) as a, open(
      os.path.join(two, "results_test.json")) as b:
    assert json.load(a)["methods"] == json.load(b)["methods"]


def _two_processes(config_file, workdir, extra=()):
  port = _free_port()
  return [subprocess.Popen(
      _command(config_file, workdir) + ["--distributed", f"--coordinator_address=localhost:{port}",
                                        "--num_processes=2", f"--process_id={i}", *extra],
      env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]


def _wait_for_training(workdir, procs):
  import time

  metrics, deadline = os.path.join(workdir, "metrics.jsonl"), time.time() + 300
  while time.time() < deadline and not (os.path.exists(metrics) and os.path.getsize(metrics)):
    assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
    time.sleep(0.2)


LONG = ["--config.max_steps_per_phase=120", "--config.num_epochs=100",
        "--config.stop_sync_every_steps=2", "--config.heartbeat_timeout_seconds=20"]


def test_a_sigterm_to_one_process_stops_both_after_the_same_checkpoint(toy_config_file,
                                                                       tmp_path):
  """Both exit 143 having saved one checkpoint at an agreed step; the rerun of both resumes
  and ends exactly where one uninterrupted process with two devices ends."""
  import signal

  straight, stopped = str(tmp_path / "straight"), str(tmp_path / "stopped")
  single = subprocess.run(_command(toy_config_file, straight) + LONG, env=_env(2),
                          capture_output=True, text=True, timeout=600)
  assert single.returncode == 0, single.stderr[-3000:]
  procs = _two_processes(toy_config_file, stopped, LONG)
  _wait_for_training(stopped, procs)
  procs[1].send_signal(signal.SIGTERM)
  outputs = [p.communicate(timeout=300) for p in procs]
  assert [p.returncode for p in procs] == [143, 143], [o[1][-2000:] for o in outputs]
  (step,) = os.listdir(os.path.join(stopped, "checkpoints"))
  assert int(step) % 2 == 0 and 0 < int(step) < 120  # an agreed step, before the end
  assert all(f"stopped by signal 15 at step {step}" in o[1] for o in outputs)
  procs = _two_processes(toy_config_file, stopped, LONG)
  outputs = [p.communicate(timeout=600) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outputs]
  assert _rows(straight) == _rows(stopped)  # every step's loss, once
  jax.tree.map(np.testing.assert_array_equal, _params(straight), _params(stopped))


def test_a_killed_process_stops_the_other_with_one_paragraph(toy_config_file, tmp_path):
  import signal
  import time

  workdir = str(tmp_path / "run")
  procs = _two_processes(toy_config_file, workdir, LONG)
  _wait_for_training(workdir, procs)
  procs[1].send_signal(signal.SIGKILL)
  start = time.time()
  _, err = procs[0].communicate(timeout=300)
  procs[1].wait()
  assert procs[0].returncode not in (0, None) and time.time() - start < 20 + 10
  assert "error: another process of this run is gone" in err, err[-3000:]
  assert "Traceback" not in err and err.rstrip().endswith("with the same command to resume.")
