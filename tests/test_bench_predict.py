"""tools/bench_predict runs a system from a made workdir and its export and reports the start
-> first prediction times and images/s of each (toy size; the numbers are the benchmark's)."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_table_has_both_sources_of_every_batch_size(tmp_path):
  done = subprocess.run([sys.executable, "-m", "tools.bench_predict", f"--out={tmp_path}",
                         "--systems=mtct", "--variant=runlocal", "--batch_sizes=1,2",
                         "--calls=1"], cwd=REPO, capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  rows = json.loads((tmp_path / "predict.json").read_text())
  assert [(r["source"], r["batch"]) for r in rows] == [("workdir", 1), ("workdir", 2),
                                                       ("export", 1), ("export", 2)]
  for r in rows:
    assert r["first_s"] > 0 and r["first_cached_s"] > 0 and r["images_per_s"] > 0
  assert "| mtct | 64x64 | export | 2 |" in (tmp_path / "predict.md").read_text()
