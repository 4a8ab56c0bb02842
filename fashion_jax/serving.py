"""An exported model (`fashion_jax.export`) run with jax, numpy and Pillow alone.

    from fashion_jax import serving
    model = serving.ExportedModel("exports/fpm")
    results = model.predict(["a.jpg"])   # the same results as fashion_jax.load(workdir)

Nothing here imports flax, optax, orbax, OpenCV or the package's models: a service needs the
export folder, jax, numpy, Pillow and these few files (`serving`, `inference`, `data.geometry`,
`data.formats`). `fashion_jax.load(folder)` returns this for an export folder.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from fashion_jax import inference

FUNCTION_FILE, VARIABLES_FILE, METADATA_FILE = ("predict.stablehlo", "variables.safetensors",
                                                "model.json")
_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
                       "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
                       "U8": np.uint8, "BOOL": np.bool_}


class ExportError(ValueError):
  """An export folder that cannot be used; the message names the file and what to do."""


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  """{name: array} of a safetensors file (8-byte little-endian header size, JSON header, data)."""
  with open(path, "rb") as f:
    data = f.read()
  if len(data) < 8:
    raise ExportError(f"{path}: {len(data)} bytes, too short for a safetensors file")
  size = int.from_bytes(data[:8], "little")
  try:
    header = json.loads(data[8:8 + size])
  except ValueError as e:
    raise ExportError(f"{path}: the header does not parse ({e}); the file is damaged") from None
  body, arrays = memoryview(data)[8 + size:], {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    start, end = info["data_offsets"]
    if end > len(body):
      raise ExportError(f"{path}: {name} ends at byte {end} of {len(body)}: the file is "
                        "truncated; export again")
    arrays[name] = np.frombuffer(body[start:end], _SAFETENSORS_DTYPES[info["dtype"]]).reshape(
        info["shape"])
  return arrays


def _metadata(folder: str) -> dict:
  path = os.path.join(folder, METADATA_FILE)
  for name in (METADATA_FILE, FUNCTION_FILE, VARIABLES_FILE):
    if not os.path.exists(os.path.join(folder, name)):
      raise ExportError(f"{folder}: no {name}; is it an export folder (fashion-jax export "
                        "--workdir=W --out=FOLDER)? A half-written export is never renamed "
                        "into place, so export again")
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError as e:
    raise ExportError(f"{path}: {e}; the file is damaged, export again") from None


def _deserialize(folder: str, meta: dict):
  path = os.path.join(folder, FUNCTION_FILE)
  with open(path, "rb") as f:
    blob = bytearray(f.read())
  try:
    return jax.export.deserialize(blob)
  except Exception as e:  # flatbuffer and version errors come as several kinds
    again = (f"fashion-jax export --workdir={meta.get('source_workdir', 'W')} --out={folder}")
    exported_with = meta.get("jax", "an unknown version")
    if exported_with != jax.__version__:
      raise ExportError(f"{path} was exported with jax {exported_with} and does not load in "
                        f"jax {jax.__version__} ({type(e).__name__}: {e}); re-export it with "
                        f"this jax: {again}") from None
    raise ExportError(f"{path} does not load ({type(e).__name__}: {e}): the file is damaged; "
                      f"export again: {again}") from None


class ExportedModel:
  """The model of an export folder; `predict` as `fashion_jax.trained.TrainedModel.predict`.
  Attributes: metadata (model.json), system, checkpoint, step, preprocess, names."""

  def __init__(self, folder: str, batch_size: int = 8):
    self.folder = folder
    self.metadata = meta = _metadata(folder)
    self.system, self.checkpoint, self.step = meta["system"], meta["checkpoint"], meta["step"]
    pre = dict(meta["preprocess"])
    self.preprocess = inference.Preprocess(**{**pre, "input_hw": tuple(pre["input_hw"])})
    names = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["names"].items()}
    names["dcsa_multiclass"] = {k: tuple(v) for k, v in names["dcsa_multiclass"].items()}
    self.names = inference.Names(**names)
    self.input_fields = tuple(meta["input_fields"])
    self.batch_size = int(batch_size)
    exported = _deserialize(folder, meta)
    arrays = read_safetensors(os.path.join(folder, VARIABLES_FILE))
    missing = [n for n in meta["variable_names"] if n not in arrays]
    if missing:
      raise ExportError(f"{os.path.join(folder, VARIABLES_FILE)} lacks {len(missing)} "
                        f"variables ({missing[0]}, ...): it does not belong to this export")
    self._values = [jax.numpy.asarray(arrays[n]) for n in meta["variable_names"]]
    self._call = jax.jit(exported.call)

  def raw(self, inputs: dict) -> dict:
    return jax.tree.map(np.asarray, self._call(self._values, inputs))

  def predict(self, images, boxes=None, masks=None, **options) -> list:
    return inference.predict(self.raw, self.preprocess, self.names, self.input_fields,
                             self.batch_size, images, boxes, masks, **options)
