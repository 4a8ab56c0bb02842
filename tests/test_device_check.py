"""tools/device_check --dry_run: the accelerator check's whole plan at toy size on the CPU, so
the command a lent GPU runs is known to work before one is lent."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_dry_run_writes_every_section_of_the_report(tmp_path):
  out = tmp_path / "check"
  done = subprocess.run([sys.executable, "-m", "tools.device_check", "--dry_run",
                         f"--out={out}"], cwd=REPO, capture_output=True, text=True, timeout=1200)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  report = json.loads((out / "device_check.json").read_text())
  sections = report["sections"]
  systems = ("fpm", "landmark_attention", "sister", "mtct", "two_stream")
  assert set(sections) == {"environment", "tests", "boundary", *(f"system {s}" for s in systems)}
  assert all(r["ok"] for r in sections.values()), {k: r for k, r in sections.items()
                                                    if not r["ok"]}
  assert sections["environment"]["backend"] == "cpu"
  assert sections["tests"]["passed"] == 2 and not sections["tests"]["failed"]
  for system in systems:
    row = sections[f"system {system}"]["row"]
    assert row["batch"] == 2 and row["step_s"] > 0 and row["flops"] > 0
    assert row["pipeline_images_per_s"] > 0 and row["pipeline_workers"] == 1
  assert sections["system two_stream"]["row"]["without"]["override"] == "boundary_source=none"
  assert sections["boundary"]["maps_per_s"] > 0
  feeding = {f["system"]: f for f in report["feeding"]}
  assert set(feeding) == set(systems)
  for f in feeding.values():  # demand = MFU x peak / FLOPs per image; workers meet it
    assert f["H100"]["demand_images_per_s"] > f["TPU v5e"]["demand_images_per_s"] > 0
    assert f["H100"]["workers"] * f["per_worker_images_per_s"] >= f["H100"][
        "demand_images_per_s"]
  text = (out / "device_check.md").read_text()
  for heading in ("| section | status |", "## Tests: 2 passed", "## Train steps",
                  "boundary map's share", "## The rasteriser alone", "## Feeding one accelerator"):
    assert heading in text, heading


def test_a_spent_budget_skips_the_rest_and_still_writes_the_report(tmp_path):
  out = tmp_path / "check"
  done = subprocess.run([sys.executable, "-m", "tools.device_check", "--dry_run",
                         "--systems=fpm", "--budget_s=12", f"--out={out}"], cwd=REPO,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 1
  sections = json.loads((out / "device_check.json").read_text())["sections"]
  assert sections["environment"]["ok"]
  skipped = [k for k, r in sections.items() if "skipped" in r]
  assert skipped and all("--budget_s spent" in sections[k]["skipped"] for k in skipped)
  assert "--budget_s spent" in (out / "device_check.md").read_text()
