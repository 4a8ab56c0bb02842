"""The reliability list: for each entry point (train, eval, predict, prepare, ablate,
cross-validate, export), the mistakes users make, run as the installed command would run them.

Each case checks the exit status (docs/training.md: 1 an error the message explains, 2 a bad
command line), one paragraph with what the case names (the config field, the file:line, the
flag), no traceback, nothing printed after the message, and that the trained workdir's
config.json, metrics.jsonl and checkpoints are byte-identical to before.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from conftest import TINY_SYNTH

LOG_LINE = re.compile(r"^[IWEF]\d{4} |^\s+File \"|Traceback")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, JAX_PLATFORMS="cpu")
TOY = """
from configs import fpm

def get_config(arg=None):
  c = fpm.get_config(arg)
  c.data.name, c.data.data_dir = "fashion_synth", {data_dir!r}
  c.data.synth.update({synth!r})
  c.data.image_size, c.data.num_threads = (32, 32), 1
  c.model.update(dict(num_stages=2, feature_widths=(8, 8, 8, 8), feature_kernels=(3, 3, 3, 3),
                      stage1_widths=(8, 8), stage1_kernels=(3, 1), refine_width=8,
                      refine_kernel=3, refine_depth=1))
  c.batch_size, c.num_devices, c.max_steps_per_phase = 8, 1, 4
  c.checkpoint_every_steps = 2
  c.progress, c.eval.baselines = False, ()
  return c
"""


def fashion_jax(*args, cwd=REPO):
  return subprocess.run([sys.executable, "-m", "fashion_jax.commands", *args], cwd=cwd,
                        env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(synth_data_dir, tmp_path_factory):
  """(config file, workdir) of a toy FPM run with checkpoints at steps 2 and 4."""
  folder = tmp_path_factory.mktemp("mistakes")
  config = folder / "toy.py"
  config.write_text(textwrap.dedent(TOY.format(data_dir=synth_data_dir, synth=TINY_SYNTH)))
  workdir = str(folder / "run")
  done = fashion_jax("train", f"--config={config}", f"--workdir={workdir}")
  assert done.returncode == 0, done.stderr[-3000:]
  return str(config), workdir


def snapshot(workdir: str) -> dict:
  """{relative path: sha256} of what a mistake must leave alone."""
  out = {}
  for name in ("config.json", "metrics.jsonl", "checkpoints", "best"):
    path = os.path.join(workdir, name)
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
    for file in files:
      with open(file, "rb") as f:
        out[os.path.relpath(file, workdir)] = hashlib.sha256(f.read()).hexdigest()
  return out


def boxes_file(tmp_path) -> str:
  path = tmp_path / "boxes.csv"
  path.write_text("file,x1,y1,x2,y2\na.jpg,1,1,20,nan\n")
  return str(path)


def photos(tmp_path) -> str:
  from PIL import Image

  folder = tmp_path / "photos"
  folder.mkdir(exist_ok=True)
  Image.new("RGB", (30, 40)).save(folder / "a.jpg")
  return str(folder)


# (name, arguments given (config, workdir, tmp_path), exit status, what the message says)
CASES = [
    ("train: resume with another model (item 1)",
     lambda c, w, t: ["train", f"--config={c}", f"--workdir={w}",
                      "--config.model.refine_width=16"],
     1, "The config differs from the run's config.json: model.refine_width: 8 in the run, 16"),
    ("train: a misspelt field (item 3)",
     lambda c, w, t: ["train", f"--config={c}", f"--workdir={w}", "--config.batch_sise=4"],
     2, "--config.batch_sise=4: the config has no field 'batch_sise'"),
    ("train: an unknown variant (item 3)",
     lambda c, w, t: ["train", f"--config={c}:runlocal,nope", f"--workdir={w}"],
     2, "unknown config variant(s) ['nope']"),
    ("train: a config file that does not exist (item 3)",
     lambda c, w, t: ["train", "--config=configs/nope.py", f"--workdir={w}"],
     2, "--config=configs/nope.py: no such file"),
    ("train: a tuple given twice (item 6)",
     lambda c, w, t: ["train", f"--config={c}", f"--workdir={w}",
                      "--config.data.image_size=(16,16)", "--config.data.image_size=(8,8)"],
     2, "config.data.image_size takes 2 numbers"),
    ("train: a bad value",
     lambda c, w, t: ["train", f"--config={c}", f"--workdir={w}", "--config.batch_size=0"],
     1, "config.batch_size = 0: expected an integer >= 1"),
    ("train: restart from a step it does not have (item 15)",
     lambda c, w, t: ["train", f"--config={c}", f"--workdir={w}", "--restart_from=1"],
     1, "--restart_from=1: "),
    ("eval: a model field (item 11)",
     lambda c, w, t: ["eval", f"--workdir={w}", "--config.model.num_stages=3"],
     2, "--config.model.num_stages: --mode=eval evaluates the run's model as trained"),
    ("eval: a workdir that is not one",
     lambda c, w, t: ["eval", f"--workdir={t}/nothing"],
     1, "config.json not found: is"),
    ("predict: a glob that matches nothing (item 3)",
     lambda c, w, t: ["predict", f"--workdir={w}", f"--images={t}/none*.jpg", f"--out={t}/o"],
     2, "matches no file"),
    ("predict: a boxes file with a bad row (item 16)",
     lambda c, w, t: ["predict", f"--workdir={w}", f"--images={photos(t)}",
                      f"--boxes={boxes_file(t)}", f"--out={t}/o"],
     1, "boxes.csv:2: "),
    ("prepare: a manual folder that does not exist",
     lambda c, w, t: ["prepare", "--dataset=deepfashion_landmarks", f"--manual_dir={t}/none",
                      f"--data_dir={t}/data"],
     1, "manual directory not found"),
    ("ablate: no variant (item 12)",
     lambda c, w, t: ["ablate", f"--config={c}", f"--workdir={t}/a"],
     2, "no --variant given"),
    ("ablate: seeds that are not numbers (item 5)",
     lambda c, w, t: ["ablate", f"--config={c}", f"--workdir={t}/a", "--variant=a=",
                      "--variant=b=runlocal", "--seeds=a"],
     2, "--seeds=a: expected comma-separated integers"),
    ("cross-validate: a config without folds",
     lambda c, w, t: ["cross-validate", f"--config={c}", f"--workdir={t}/cv"],
     1, "cross-validation needs >= 2"),
    ("export: into a folder that is not an export",
     lambda c, w, t: ["export", f"--workdir={w}", f"--out={w}", "--platforms=cpu"],
     1, "not an export"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_mistake_is_one_paragraph_and_changes_nothing(trained, tmp_path, case):
  _, arguments, status, says = case
  config, workdir = trained
  before = snapshot(workdir)
  done = fashion_jax(*arguments(config, workdir, tmp_path))
  err = done.stderr
  assert done.returncode == status, err[-3000:]
  assert "Traceback" not in err, err[-3000:]
  lines = [line for line in err.strip().splitlines() if line.strip()]
  message = next(i for i, line in enumerate(lines) if line.startswith("error:"))
  tail = lines[message:]  # the paragraph (and the --traceback hint): no log line after it
  assert len(tail) <= 3 and not any(LOG_LINE.match(line) for line in tail), lines[-5:]
  assert says in tail[0], tail[0]
  assert snapshot(workdir) == before
  assert json.load(open(os.path.join(workdir, "config.json")))["model"]["refine_width"] == 8


def test_a_second_run_on_a_workdir_in_use_is_refused_and_changes_nothing(trained):
  """Item 18 from the command line: a live holder of the workdir's lock."""
  config, workdir = trained
  holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                             "from fashion_jax import workdir_lock\n"
                             "workdir_lock.acquire(sys.argv[1]); print('held', flush=True)\n"
                             "time.sleep(300)\n", workdir], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
  try:
    assert holder.stdout.readline().strip() == "held"
    before = snapshot(workdir)
    done = fashion_jax("train", f"--config={config}", f"--workdir={workdir}")
  finally:
    holder.kill()
    holder.wait()
  os.remove(os.path.join(workdir, "run.lock"))  # the killed holder's (a next run takes it over)
  assert done.returncode == 1 and "Traceback" not in done.stderr
  assert f"is in use by process {holder.pid}" in done.stderr
  assert snapshot(workdir) == before
