"""tools/timing_worker: calls run and are timed in the worker; its failures reach the parent as
errors that name the worker."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELPER = """
import time

def build(seconds):
  return {"nap": lambda: time.sleep(seconds)}, ("ready after", seconds)
"""


def _run(code: str, tmp_path) -> subprocess.CompletedProcess:
  # A fresh interpreter (spawning from inside pytest's workers would re-import their main), with
  # a helper module of build functions the spawned worker can import.
  (tmp_path / "naps.py").write_text(HELPER)
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
  return subprocess.run([sys.executable, "-c", "from tools.timing_worker import TimingWorker\n"
                         "import naps\n" + code], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=120)


def test_times_the_named_call_in_the_worker(tmp_path):
  out = _run("with TimingWorker('sleeper', naps.build, 0.2) as w:\n"
             "  print('INFO', w.info)\n"
             "  print('SECONDS', *[w.time('nap') for _ in range(3)])\n", tmp_path)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "INFO ('ready after', 0.2)" in out.stdout
  seconds = [float(s) for s in out.stdout.split("SECONDS")[1].split()]
  assert len(seconds) == 3 and all(0.2 <= s < 10 for s in seconds)


def test_an_error_in_a_call_names_the_worker(tmp_path):
  out = _run("with TimingWorker('sleeper', naps.build, 0.0) as w:\n  w.time('walk')\n", tmp_path)
  assert out.returncode != 0
  assert "RuntimeError: sleeper: KeyError: 'walk' (at " in out.stderr
  assert "timing_worker.py:" in out.stderr.split("KeyError: 'walk'")[1]  # where it failed


def test_a_worker_that_dies_is_reported_not_waited_for(tmp_path):
  out = _run("import os\nTimingWorker('doomed', os._exit, 3)\n", tmp_path)
  assert out.returncode != 0
  assert "RuntimeError: doomed: the worker process died (exit code 3" in out.stderr
