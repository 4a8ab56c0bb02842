"""The Colab notebook's Python runs: its cells executed in order at toy size on CPU, the Drive cell
off Colab (skipped) and on a stand-in of Colab, the real-data cell with and without real data."""

import copy
import json
import os
import sys
import types

import pytest

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "notebooks", "train_on_tpu.ipynb")
DRIVE_MARK = "from google.colab import drive"
REAL_DATA_MARK = "PRETRAINED.items()"


def _python_lines(cell):
  # Shell (`!`) and magic (`%`) lines are Colab's, not Python: they are not run here.
  return "".join(line for line in cell["source"] if not line.lstrip().startswith(("!", "%")))


def _code_cells() -> list[str]:
  with open(NOTEBOOK) as f:
    return [_python_lines(c) for c in json.load(f)["cells"] if c["cell_type"] == "code"]


def _cell(marker: str) -> str:
  (source,) = [s for s in _code_cells() if marker in s]
  return source


def _parameters() -> dict:
  namespace = {}
  exec(_code_cells()[0], namespace)
  return namespace


def test_notebook_cells_run_in_order(synth_data_dir, tmp_path, monkeypatch, capsys):
  cells = _code_cells()
  namespace = {}
  exec(cells[0], namespace)  # the parameters cell
  assert (namespace["DATA_DIR"], namespace["PRETRAINED"], namespace["USE_DRIVE"]) == ("", {},
                                                                                      False)
  workdir = str(tmp_path / "nb")
  # USE_DRIVE on: off Colab the Drive cell must take its skip path and leave WORKDIR alone.
  namespace.update(REPO=os.path.dirname(NOTEBOOK) + "/..", WORKDIR=workdir, SMOKE_TEST=True,
                   USE_DRIVE=True)
  monkeypatch.setitem(sys.modules, "google.colab", None)  # importing it raises ImportError
  monkeypatch.setenv("FASHION_JAX_DATA_DIR", synth_data_dir)
  ran = set()
  for source in cells[1:]:
    if "display(Image(" in source:
      assert os.path.exists(str(tmp_path / "nb" / "predictions_test.png"))
      continue  # IPython is not a test dependency
    before = copy.deepcopy(namespace["config"].to_dict()) if REAL_DATA_MARK in source else None
    exec(source, namespace)
    if DRIVE_MARK in source:
      ran.add("drive")
      assert namespace["WORKDIR"] == workdir
      assert "USE_DRIVE skipped: not on Colab" in capsys.readouterr().out
    if REAL_DATA_MARK in source:
      ran.add("real data")
      assert namespace["config"].to_dict() == before  # DATA_DIR "" and no PRETRAINED: as it was
  assert ran == {"drive", "real data"}
  assert namespace["results"], "the notebook's training cell returned no results"


class _FakeDrive:
  """`google.colab.drive` of a test: records the mount points."""

  def __init__(self):
    self.mounted = []

  def mount(self, path):
    self.mounted.append(path)


def _fake_colab(monkeypatch) -> _FakeDrive:
  drive = _FakeDrive()
  monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(drive=drive))
  return drive


def test_drive_cell_does_nothing_unless_asked(monkeypatch, capsys):
  drive = _fake_colab(monkeypatch)
  namespace = _parameters()
  exec(_cell(DRIVE_MARK), namespace)
  assert namespace["WORKDIR"] == "/content/workdirs/fpm"
  assert drive.mounted == []
  assert capsys.readouterr().out == ""


def test_drive_cell_on_colab_moves_the_workdir_to_drive(monkeypatch, tmp_path):
  # /content stands in under tmp_path: the cell's paths are Colab's.
  drive = _fake_colab(monkeypatch)
  content = str(tmp_path / "content")
  source = _cell(DRIVE_MARK).replace("/content", content)
  namespace = _parameters()
  local = f"{content}/workdirs/fpm"
  os.makedirs(f"{local}/checkpoints")
  namespace.update(USE_DRIVE=True, WORKDIR=local + "/")
  exec(source, namespace)
  assert drive.mounted == [f"{content}/drive"]
  on_drive = f"{content}/drive/MyDrive/fashion_jax/workdirs/fpm"
  assert namespace["WORKDIR"] == on_drive
  assert os.path.isdir(f"{on_drive}/checkpoints") and not os.path.exists(local)
  exec(source, namespace)  # rerun (after a reset): stays on Drive
  assert namespace["WORKDIR"] == on_drive
  namespace["WORKDIR"] = local  # a fresh /content workdir never replaces the one on Drive
  os.makedirs(local)
  exec(source, namespace)
  assert namespace["WORKDIR"] == on_drive
  assert os.path.isdir(f"{on_drive}/checkpoints") and os.path.isdir(local)


def test_real_data_cell_sets_the_data_dir_and_pretrained_files():
  from configs import landmark_attention

  config = landmark_attention.get_config()
  namespace = dict(config=config, CONFIG="landmark_attention", DATA_DIR="/data/tfds",
                   PRETRAINED={"backbone": "/drive/vgg16.safetensors"})
  exec(_cell(REAL_DATA_MARK), namespace)
  assert config.data.data_dir == "/data/tfds"
  assert config.model.pretrained.to_dict() == {"backbone": "/drive/vgg16.safetensors"}
  namespace["PRETRAINED"] = {"backbon": "/drive/vgg16.safetensors"}
  with pytest.raises(ValueError, match=r"PRETRAINED\['backbon'\].*\['backbone'\]"):
    exec(_cell(REAL_DATA_MARK), namespace)
