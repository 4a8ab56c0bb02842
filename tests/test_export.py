"""Export of every system: `jax.export` StableHLO for cpu, cuda and tpu with a symbolic batch,
safetensors variables and model.json; `fashion_jax.serving` runs it in a process where flax, the
models and OpenCV cannot be imported, and gives the workdir's results to 1e-5 at two batch
sizes; damaged or foreign artifacts are refused with a message."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from fixtures.tiny_systems import SYSTEMS, tiny_config
from safetensors.numpy import load_file

import fashion_jax
from fashion_jax import export, serving, train
from fashion_jax.data import schema

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKED = ("flax", "optax", "orbax", "cv2", "tensorflow_datasets", "grain", "ml_collections",
           "fashion_jax.models", "fashion_jax.systems", "fashion_jax.trained", "fashion_jax.train",
           "torch")
SERVE = """
import importlib.abc, json, sys
import numpy as np

class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if any(name == b or name.startswith(b + ".") for b in BLOCKED):
      raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())

import fashion_jax
out = {}
inputs = np.load(sys.argv[2])
images = [inputs[f"image{i}"] for i in range(8)]
masks = [inputs[f"mask{i}"] for i in range(8)] if "mask0" in inputs else None
for batch_size in (3, 8):
  model = fashion_jax.load(sys.argv[1], batch_size=batch_size)
  assert type(model).__name__ == "ExportedModel"
  out[batch_size] = model.predict(images, masks=masks)
assert not [m for m in sys.modules if m.split(".")[0] in ("flax", "cv2", "optax", "orbax")]
print(json.dumps(out))
"""


def _flat(result: dict) -> dict:
  """{path: number} of a result's numbers (bools as 0/1; names as part of the path)."""
  out = {}

  def walk(prefix, value):
    if isinstance(value, dict):
      for k, v in value.items():
        walk(f"{prefix}/{k}", v)
    elif isinstance(value, list | tuple):
      for i, v in enumerate(value):
        walk(f"{prefix}/{i}", v)
    elif isinstance(value, str):
      out[f"{prefix}={value}"] = 0.0
    else:
      out[prefix] = float(value)

  walk("", result)
  return out


def _inputs(system, tmp_path):
  rng = np.random.default_rng(1)
  arrays = {f"image{i}": rng.integers(0, 256, (36 + 5 * i, 50 - 2 * i, 3), dtype=np.uint8)
            for i in range(8)}
  if system == "sister":
    arrays.update({f"mask{i}": (rng.random(arrays[f"image{i}"].shape[:2]) > 0.4).astype(
        np.uint8) for i in range(8)})
  path = tmp_path / "inputs.npz"
  np.savez(path, **arrays)
  return arrays, str(path)


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_export_serves_the_workdirs_results_without_flax(system, synth_data_dir, tmp_path):
  workdir, folder = str(tmp_path / "run"), str(tmp_path / "export")
  train.train_and_evaluate(tiny_config(system, synth_data_dir), workdir)
  metadata = export.export_model(workdir, folder)
  assert metadata["platforms"] == ["cpu", "cuda", "tpu"] and metadata["system"] == system
  assert list(metadata["preprocess"]["input_hw"]) == [32, 32] and metadata["jax"]
  assert sorted(os.listdir(folder)) == ["model.json", "predict.stablehlo",
                                        "variables.safetensors"]
  # The variables as an independent reader (the safetensors library) sees them.
  stored = load_file(os.path.join(folder, "variables.safetensors"))
  assert sorted(stored) == metadata["variable_names"]
  assert all(name.startswith(("params/", "batch_stats/")) for name in stored)

  arrays, inputs_path = _inputs(system, tmp_path)
  images = [arrays[f"image{i}"] for i in range(8)]
  masks = [arrays[f"mask{i}"] for i in range(8)] if system == "sister" else None
  expected = fashion_jax.load(workdir, batch_size=8).predict(images, masks=masks)
  code = f"BLOCKED = {BLOCKED!r}\n" + SERVE
  done = subprocess.run([sys.executable, "-c", code, folder, inputs_path], cwd=tmp_path,
                        capture_output=True, text=True, timeout=600,
                        env={**os.environ, "PYTHONPATH": REPO})
  assert done.returncode == 0, done.stderr[-3000:]
  served = json.loads(done.stdout.strip().splitlines()[-1])
  for batch_size in ("3", "8"):
    assert len(served[batch_size]) == 8
    for ours, theirs in zip(expected, served[batch_size], strict=True):
      a, b = _flat(ours), _flat(theirs)
      assert a.keys() == b.keys()
      np.testing.assert_allclose([b[k] for k in a], list(a.values()), atol=1e-5, rtol=1e-5)
  _predict_command_reads_the_export(system, folder, arrays, tmp_path, expected)
  # Each system's own named fields.
  first = expected[0]
  want = {"fpm": {"keypoints"}, "landmark_attention": {"landmarks", "category", "attributes"},
          "two_stream": {"landmarks", "category", "attributes"}, "sister": {"dcsa"},
          "mtct": {"attribute_groups"}}[system]
  assert want <= set(first)
  if "dcsa" in first:
    assert list(first["dcsa"]) == list(schema.DCSA_LABELS) and "category" not in first
    assert first["dcsa"]["category"][0] in schema.DCSA_MULTICLASS_LABELS["category"]
  if "attribute_groups" in first:
    assert list(first["attribute_groups"]) == list(metadata["names"]["attribute_group_names"])
  if "category" in first:
    probabilities = [p for _, p in first["category"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6


def _predict_command_reads_the_export(system, folder, arrays, tmp_path, expected):
  """`python -m fashion_jax.predict --workdir=EXPORT`: the same results, one overlay per photo
  at its own size, names mirroring the photos' relative paths."""
  from PIL import Image

  photos, masks = tmp_path / "photos", tmp_path / "masks"
  for i in range(8):
    name = f"{'ab'[i % 2]}/{i}.png"
    (photos / name).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arrays[f"image{i}"]).save(photos / name)
    if system == "sister":
      (masks / name).parent.mkdir(parents=True, exist_ok=True)
      Image.fromarray(arrays[f"mask{i}"] * 255).save(masks / name)
  out = tmp_path / "predicted"
  flags = [f"--masks={masks}"] if system == "sister" else []
  done = subprocess.run([sys.executable, "-m", "fashion_jax.predict", f"--workdir={folder}",
                         f"--images={photos}", f"--out={out}", *flags], cwd=REPO,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  predicted = json.loads((out / "predictions.json").read_text())
  assert sorted(predicted) == sorted(f"{'ab'[i % 2]}/{i}.png" for i in range(8))
  for i in range(8):
    name = f"{'ab'[i % 2]}/{i}.png"
    a, b = _flat(expected[i]), _flat(predicted[name])
    assert a.keys() == b.keys()
    np.testing.assert_allclose([b[k] for k in a], list(a.values()), atol=1e-5, rtol=1e-5)
    overlay = Image.open(out / name)
    assert overlay.size == Image.open(photos / name).size


@pytest.fixture(scope="module")
def fpm_export(synth_data_dir, tmp_path_factory):
  root = tmp_path_factory.mktemp("fpm_export")
  workdir = str(root / "run")
  train.train_and_evaluate(tiny_config("fpm", synth_data_dir), workdir)
  export.export_model(workdir, str(root / "export"))
  return workdir, str(root / "export")


def _copy(folder, tmp_path):
  import shutil

  target = str(tmp_path / "copy")
  shutil.copytree(folder, target)
  return target


def test_damaged_and_foreign_exports_are_refused_with_a_message(fpm_export, tmp_path):
  workdir, folder = fpm_export
  broken = _copy(folder, tmp_path)
  function = os.path.join(broken, "predict.stablehlo")
  with open(function, "r+b") as f:
    f.truncate(100)
  with pytest.raises(serving.ExportError, match="does not load .*damaged; export again"):
    fashion_jax.load(broken)
  meta_path = os.path.join(broken, "model.json")
  meta = json.load(open(meta_path))
  meta["jax"] = "0.4.1"
  json.dump(meta, open(meta_path, "w"))
  with pytest.raises(serving.ExportError, match=r"exported with jax 0\.4\.1 .*re-export it"):
    fashion_jax.load(broken)
  os.remove(function)
  with pytest.raises(serving.ExportError, match="no predict.stablehlo"):
    serving.ExportedModel(broken)
  truncated = _copy(folder, tmp_path / "t")
  variables = os.path.join(truncated, "variables.safetensors")
  size = os.path.getsize(variables)
  with open(variables, "r+b") as f:
    f.truncate(size // 2)
  with pytest.raises(serving.ExportError, match="truncated; export again"):
    serving.ExportedModel(truncated)


def test_an_export_never_overwrites_a_folder_that_is_not_one(fpm_export, tmp_path):
  workdir, _ = fpm_export
  other = tmp_path / "notes"
  other.mkdir()
  (other / "keep.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="is not an export folder"):
    export.export_model(workdir, str(other))
  assert (other / "keep.txt").read_text() == "mine"


def test_the_export_command(fpm_export, tmp_path):
  """`fashion-jax export` (the console script the install puts beside this Python) from another
  directory, and its `python -m` form's refusal of an unknown platform."""
  workdir, _ = fpm_export
  out = tmp_path / "cmd"
  script = os.path.join(os.path.dirname(sys.executable), "fashion-jax")
  done = subprocess.run([script, "export", f"--workdir={workdir}", f"--out={out}",
                         "--platforms=cpu"], cwd=tmp_path, capture_output=True, text=True,
                        timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "exported fpm" in done.stdout and json.load(open(out / "model.json"))["platforms"] == [
      "cpu"]
  bad = subprocess.run([sys.executable, "-m", "fashion_jax.export", f"--workdir={workdir}",
                        f"--out={out}", "--platforms=gpu"], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
  assert bad.returncode == 2 and "--platforms: unknown gpu" in bad.stderr
  unknown = subprocess.run([script, "exprot"], capture_output=True, text=True, timeout=60)
  assert unknown.returncode == 2 and "unknown subcommand 'exprot'" in unknown.stderr
