r"""One check of the package on an accelerator: what a lent GPU (or TPU) machine must show.

  bash tools/device_check.sh OUT              # on the accelerator machine, from the repo root
  python -m tools.device_check --out=OUT      # the same, jax already installed
  python -m tools.device_check --out=OUT --dry_run   # the same plan at toy size, on the CPU (CI)

Sections, each in a process of its own, in this order, within `--budget_s` (a section that
would start past it is recorded as skipped, so the report is never lost to one slow part):

  1. environment: jax and its backend, the devices, host cores, the packages' versions;
  2. tests that matter on an accelerator: every system's bfloat16 step (tests/test_bfloat16.py),
     the pooling gradient (tests/test_pooling.py), the boundary rasteriser (tests/test_boundary.py),
     and the two-stream step with the rasteriser inside, run with host transfers disallowed;
  3. systems: every paper config's train step in bfloat16 (tools/bench_systems, one process per
     system): step time, FLOPs, MFU, memory, and the input pipeline with `--workers` workers
     against the step's demand; the two-stream row also times the step without the boundary map
     (its share of the step);
  4. boundary: the rasteriser alone on the device (tools/bench_boundary), batch 32 at 56x56;
  5. feeding: from 3, the images/s one accelerator asks for at `--mfu` of its bfloat16 peak
     (H100 989, TPU v5e 197 TFLOP/s) and the input workers that meet it at the measured
     per-worker rate.

Writes `OUT/device_check.md` and `OUT/device_check.json` after every section, and each section's
log to `OUT/logs/`. Exit status 0 when every section ran and passed, else 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEMS = ("fpm", "landmark_attention", "sister", "mtct", "two_stream")  # the slowest last
GPU_TESTS = ("tests/test_bfloat16.py", "tests/test_pooling.py", "tests/test_boundary.py",
             "tests/test_two_stream.py::test_the_step_runs_with_every_host_transfer_disallowed")
DRY_TESTS = ("tests/test_bfloat16.py::test_the_step_computes_in_bfloat16_and_learns[fpm]",
             "tests/test_bfloat16.py::test_float16_without_loss_scaling_is_refused")
# Accelerators a user sizes a host for: bfloat16 dense peak TFLOP/s per chip.
FEEDING_PEAKS = {"H100": 989.0, "TPU v5e": 197.0}

ENVIRONMENT = r"""
import importlib.metadata as md, json, os, platform, shutil, subprocess, jax
devices = jax.devices()
smi = shutil.which("nvidia-smi")
gpu = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip() if smi else ""
versions = {}
for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy",
             "ml_collections", "tensorflow-datasets", "opencv-python-headless"):
  try:
    versions[name] = md.version(name)
  except md.PackageNotFoundError:
    versions[name] = None
print(json.dumps({"backend": jax.default_backend(), "device_kind": devices[0].device_kind,
                  "num_devices": len(devices), "host_cores": os.cpu_count(),
                  "processor": platform.processor() or platform.machine(), "nvidia_smi": gpu,
                  "versions": versions}))
"""


@dataclasses.dataclass
class Section:
  name: str
  argv: list[str]
  timeout_s: float
  parse: object  # (completed process, section log folder) -> dict of results


def _last_json_line(text: str) -> dict:
  lines = [line for line in text.splitlines() if line.startswith("{")]
  return json.loads(lines[-1]) if lines else {}


def _junit(path: str) -> dict:
  """{test id: 'passed' | 'failed' | 'skipped' | 'error'} from a pytest JUnit XML file."""
  if not os.path.exists(path):
    return {}
  outcomes = {}
  for case in ElementTree.parse(path).getroot().iter("testcase"):
    name = f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"
    kinds = {child.tag for child in case}
    outcomes[name] = ("failed" if "failure" in kinds else "error" if "error" in kinds else
                      "skipped" if "skipped" in kinds else "passed")
  return outcomes


def tests_section(args, logs: str) -> Section:
  xml = os.path.join(logs, "tests.xml")
  argv = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider",
          f"--junitxml={xml}", *(DRY_TESTS if args.dry_run else GPU_TESTS)]

  def parse(done, _):
    outcomes = _junit(xml)
    failed = sorted(k for k, v in outcomes.items() if v in ("failed", "error"))
    return {"outcomes": outcomes, "passed": sum(v == "passed" for v in outcomes.values()),
            "failed": failed, "ok": done.returncode == 0 and bool(outcomes)}

  return Section("tests", argv, args.tests_timeout_s, parse)


def system_argv(args, system: str, out: str) -> list[str]:
  argv = [sys.executable, "-m", "tools.bench_systems", f"--systems={system}", f"--out={out}"]
  if system == "two_stream":
    argv.append("--system_extra=two_stream:--without=boundary_source=none")
  if args.dry_run:
    return argv + ["--variant=runlocal", "--rounds=1", "--steps=1", "--pipeline_batches=1",
                   "--extra=--config.batch_size=2 --config.data.num_threads=1 "
                   "--config.num_devices=1"]
  return argv + [f"--rounds={args.rounds}", f"--steps={args.steps}", "--pipeline_batches=4",
                 f"--extra=--config.data.num_threads={args.workers}"]


def system_section(args, system: str, logs: str) -> Section:
  out = os.path.join(logs, f"system_{system}")

  def parse(done, _):
    path = os.path.join(out, "benchmarks.json")
    rows = json.load(open(path)) if os.path.exists(path) else []
    row = rows[0] if rows else {"system": system, "error": f"exit {done.returncode}, no row"}
    return {"row": row, "ok": done.returncode == 0 and "error" not in row}

  timeout = args.system_timeout_s * (2 if system == "two_stream" else 1)
  return Section(f"system {system}", system_argv(args, system, out), timeout, parse)


def boundary_section(args, logs: str) -> Section:
  argv = [sys.executable, "-m", "tools.bench_boundary", "--batch_sizes=32", "--sizes=56",
          "--repeats=3", f"--min_seconds={0.05 if args.dry_run else 0.25}"]

  def parse(done, _):
    table = [line for line in done.stdout.splitlines() if line.startswith("|")]
    row = table[-1].strip("|").split("|") if len(table) > 2 else []
    maps_per_s = float(row[3].replace(",", "")) if row else float("nan")
    return {"table": table, "maps_per_s": maps_per_s, "ok": done.returncode == 0 and bool(row)}

  return Section("boundary", argv, 120, parse)


def plan(args, logs: str) -> list[Section]:
  env = Section("environment", [sys.executable, "-c", ENVIRONMENT], 120,
                lambda done, _: {**_last_json_line(done.stdout), "ok": done.returncode == 0})
  return [env, tests_section(args, logs),
          *(system_section(args, s, logs) for s in args.systems), boundary_section(args, logs)]


def run_section(section: Section, logs: str, seconds_left: float) -> dict:
  """The section's results, with its exit status, seconds and log, or why it did not run."""
  if seconds_left < 10:
    return {"ok": False, "skipped": f"--budget_s spent ({seconds_left:.0f} s left)"}
  log = os.path.join(logs, section.name.replace(" ", "_") + ".log")
  shown = section.argv[1:] if section.argv[1] == "-m" else section.argv[1:2]
  print(f"== {section.name}: {shlex.join(shown)}", flush=True)
  t0 = time.perf_counter()
  try:
    done = subprocess.run(section.argv, cwd=REPO, capture_output=True, text=True,
                          timeout=min(section.timeout_s, seconds_left))
  except subprocess.TimeoutExpired as e:
    with open(log, "w") as f:
      f.write(_text(e.stdout) + _text(e.stderr))
    return {"ok": False, "error": f"stopped after {min(section.timeout_s, seconds_left):.0f} s",
            "seconds": time.perf_counter() - t0, "log": log}
  with open(log, "w") as f:
    f.write(done.stdout + done.stderr)
  result = section.parse(done, logs)
  if done.returncode and "error" not in result:
    said = [line for line in done.stderr.splitlines() if line.strip()]
    result["error"] = f"exit {done.returncode}: {said[-1] if said else 'no output'}"
  return {**result, "returncode": done.returncode, "seconds": time.perf_counter() - t0,
          "log": log}


def _text(data) -> str:
  return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def feeding(rows: list[dict], mfu: float) -> list[dict]:
  """Per system: FLOPs per training image, the images/s an H100 and a TPU v5e chip consume at
  `mfu` of their bfloat16 peak, the measured per-worker input rate, and the workers needed."""
  out = []
  for row in rows:
    if "error" in row or not row.get("flops") or "pipeline_images_per_s" not in row:
      continue
    per_image = row["flops"] / row["batch"]
    per_worker = row["pipeline_images_per_s"] / row["pipeline_workers"]
    entry = {"system": row["system"], "gflop_per_image": per_image / 1e9,
             "per_worker_images_per_s": per_worker, "workers": row["pipeline_workers"],
             "pipeline_images_per_s": row["pipeline_images_per_s"],
             "step_images_per_s": row["images_per_s"]}
    for chip, peak in FEEDING_PEAKS.items():
      demand = mfu * peak * 1e12 / per_image
      entry[chip] = {"demand_images_per_s": demand, "workers": math.ceil(demand / per_worker)}
    out.append(entry)
  return out


def markdown(report: dict) -> str:
  from fashion_jax.tools import benchmarking
  from tools import bench_systems

  env = report["sections"].get("environment", {})
  lines = [f"# Device check: {env.get('device_kind', '?')} x{env.get('num_devices', '?')} "
           f"({env.get('backend', '?')}), {env.get('host_cores', '?')} host cores"
           + (" (dry run: toy sizes)" if report["dry_run"] else ""), "",
           f"{report['date']}; `{report['command']}`; {report['seconds']:.0f} s in all", "",
           f"nvidia-smi: {env.get('nvidia_smi') or '(none)'}; versions: "
           + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()), "",
           "| section | status | seconds |", "|---|---|---:|"]
  for name, result in report["sections"].items():
    status = ("ok" if result.get("ok") else result.get("skipped") or result.get("error")
              or "failed")
    lines.append(f"| {name} | {status} | {result.get('seconds', 0):.0f} |")
  tests = report["sections"].get("tests", {})
  if tests.get("outcomes"):
    lines += ["", f"## Tests: {tests['passed']} passed, {len(tests['failed'])} failed", ""]
    lines += [f"- {name}: {outcome}" for name, outcome in sorted(tests["outcomes"].items())
              if outcome != "passed"] or ["- every test passed"]
  rows = [r["row"] for k, r in report["sections"].items() if k.startswith("system ") and "row" in r]
  if rows:
    lines += ["", "## Train steps (paper configs unless a dry run; bfloat16 compute on an "
              "accelerator)", "", "| " + " | ".join(benchmarking.COLUMNS) + " |",
              "|" + "---|" * len(benchmarking.COLUMNS)]
    lines += ["| " + " | ".join(bench_systems.cells(r)) + " |" for r in rows]
    for row in rows:
      if "without" in row:
        share = 1 - row["without"]["step_s"] / row["step_s"]
        lines += ["", f"Two-stream step without the boundary map "
                  f"(`{row['without']['override']}`): {row['without']['step_s'] * 1e3:.1f} ms "
                  f"against {row['step_s'] * 1e3:.1f} ms: the boundary map's share "
                  f"{share:.1%} (rounds' spread {row['round_spread_s'] * 1e3:.1f} ms)."]
  boundary = report["sections"].get("boundary", {})
  if boundary.get("table"):
    lines += ["", "## The rasteriser alone (batch 32 at 56x56)", "", *boundary["table"]]
    two_stream = next((r for r in rows if r["system"] == "two_stream" and "error" not in r), None)
    if two_stream and boundary["maps_per_s"] > 0:
      per_step = two_stream["batch"] / boundary["maps_per_s"]
      lines += ["", f"One batch's maps take {per_step * 1e3:.3f} ms: "
                f"{per_step / two_stream['step_s']:.3%} of the two-stream step."]
  if report.get("feeding"):
    lines += ["", f"## Feeding one accelerator at {report['mfu']:.0%} MFU (bfloat16 peak)", "",
              "| system | GFLOP/image | step images/s here | pipeline images/s (workers) | "
              "per worker | H100 demand | workers | TPU v5e demand | workers |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for f in report["feeding"]:
      lines.append(
          f"| {f['system']} | {f['gflop_per_image']:.1f} | {f['step_images_per_s']:.0f} | "
          f"{f['pipeline_images_per_s']:.0f} ({f['workers']}) | "
          f"{f['per_worker_images_per_s']:.0f} | {f['H100']['demand_images_per_s']:,.0f} | "
          f"{f['H100']['workers']} | {f['TPU v5e']['demand_images_per_s']:,.0f} | "
          f"{f['TPU v5e']['workers']} |")
    lines += ["", "Per worker: the pipeline's rate over its worker count (assumes the rate grows "
              "with the workers); demand: images/s = MFU x peak / FLOPs per training image."]
  return "\n".join(lines) + "\n"


def write(report: dict, out: str) -> None:
  rows = [r["row"] for k, r in report["sections"].items() if k.startswith("system ") and "row" in r]
  report["feeding"] = feeding(rows, report["mfu"])
  with open(os.path.join(out, "device_check.json"), "w") as f:
    json.dump(report, f, indent=1, default=str)
  with open(os.path.join(out, "device_check.md"), "w") as f:
    f.write(markdown(report))


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="folder for the report and logs/")
  parser.add_argument("--dry_run", action="store_true", help="toy sizes, CPU: the plan works")
  parser.add_argument("--budget_s", type=float, default=480.0,
                      help="seconds for every section together (the machine is lent for little)")
  parser.add_argument("--systems", type=lambda s: s.split(","), default=list(SYSTEMS))
  parser.add_argument("--workers", type=int, default=16, help="input workers (data.num_threads)")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--mfu", type=float, default=0.5, help="MFU the feeding table assumes")
  parser.add_argument("--tests_timeout_s", type=float, default=150.0)
  parser.add_argument("--system_timeout_s", type=float, default=80.0,
                      help="per system (twice this for the two-stream network)")
  args = parser.parse_args(argv)
  unknown = sorted(set(args.systems) - set(SYSTEMS))
  if unknown:
    parser.error(f"--systems: unknown {', '.join(unknown)}; known: {', '.join(SYSTEMS)}")
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  logs = os.path.join(os.path.abspath(args.out), "logs")
  os.makedirs(logs, exist_ok=True)
  report = {"date": datetime.date.today().isoformat(), "dry_run": args.dry_run, "mfu": args.mfu,
            "command": "python -m tools.device_check " + shlex.join(sys.argv[1:]),
            "sections": {}, "seconds": 0.0}
  start = time.perf_counter()
  for section in plan(args, logs):
    left = args.budget_s - (time.perf_counter() - start)
    report["sections"][section.name] = run_section(section, logs, left)
    report["seconds"] = time.perf_counter() - start
    write(report, args.out)
    status = report["sections"][section.name]
    print(f"   {'ok' if status.get('ok') else status.get('skipped') or status.get('error')}"
          f" ({status.get('seconds', 0):.0f} s)", flush=True)
  print(f"wrote {os.path.join(args.out, 'device_check.md')}")
  return 0 if all(r.get("ok") for r in report["sections"].values()) else 1


if __name__ == "__main__":
  sys.exit(main())
