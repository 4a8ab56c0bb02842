r"""Export a trained run's model so that it runs without this package's training stack.

  fashion-jax export --workdir=W --out=E
  python -m fashion_jax.export --workdir=W --out=E [--platforms=cpu,cuda,tpu]

Writes the folder E:

  predict.stablehlo     `jax.export` serialised StableHLO of the network from uint8 input images
                        [b, H, W, 3] (and the segmented image, for SisterNetwork) to its raw
                        predictions, with a symbolic batch dimension b, lowered for every
                        platform of --platforms in one artifact; normalisation is inside;
  variables.safetensors the parameters and batch statistics, by '/'-joined name;
  model.json            the system, input size, crop rule, normalisation, keypoint / landmark /
                        category / attribute names, the source workdir, checkpoint and step, the
                        jax version, and the argument order.

`fashion_jax.serving.ExportedModel(E)` (or `fashion_jax.load(E)`, or `predict --workdir=E`)
runs it with jax, numpy and Pillow alone and gives the same numbers as the workdir's model.
E is written in a temporary folder beside it and renamed at the end: an interrupted export
leaves no half-written E.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import jax
import numpy as np
from absl import app, flags

from fashion_jax.serving import FUNCTION_FILE, METADATA_FILE, VARIABLES_FILE

PLATFORMS = ("cpu", "cuda", "tpu")
FORMAT_VERSION = 1


def flatten(variables: dict) -> dict[str, np.ndarray]:
  """{'params/conv1/kernel': array, ...}, in sorted order."""
  from flax import traverse_util

  flat = traverse_util.flatten_dict(variables, sep="/")
  return {k: np.asarray(flat[k]) for k in sorted(flat)}


def export_function(model, platforms=PLATFORMS):
  """The `jax.export.Exported` of `model.forward` over (flat variables list, inputs dict)."""
  from flax import traverse_util

  names = list(flatten(model.variables))

  def fn(flat_values, inputs):
    variables = traverse_util.unflatten_dict(dict(zip(names, flat_values, strict=True)), sep="/")
    return model.forward.fn(variables, inputs)

  (b,) = jax.export.symbolic_shape("b")
  flat = flatten(model.variables)
  value_specs = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in flat.values()]
  h, w = model.preprocess.input_hw
  input_specs = {f: jax.ShapeDtypeStruct((b, h, w, 3), np.uint8)
                 for f in model.forward.input_fields}
  return jax.export.export(jax.jit(fn), platforms=tuple(platforms))(value_specs, input_specs)


def export_model(workdir: str, out: str, platforms=PLATFORMS) -> dict:
  """Writes the export folder `out` (see the module docstring); returns its model.json."""
  from safetensors.numpy import save_file

  from fashion_jax import trained

  if os.path.exists(out) and not os.path.exists(os.path.join(out, METADATA_FILE)) and (
      not os.path.isdir(out) or os.listdir(out)):
    raise FileExistsError(f"{out} exists and is not an export folder: give a new --out")
  model = trained.TrainedModel(workdir, batch_size=1)
  exported = export_function(model, platforms)
  flat = flatten(model.variables)
  metadata = {"format_version": FORMAT_VERSION, **model.metadata(), "jax": jax.__version__,
              "platforms": list(exported.platforms), "variable_names": list(flat)}
  parent = os.path.dirname(os.path.abspath(out))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
  try:
    with open(os.path.join(staging, FUNCTION_FILE), "wb") as f:
      f.write(exported.serialize())
    save_file(flat, os.path.join(staging, VARIABLES_FILE))
    with open(os.path.join(staging, METADATA_FILE), "w") as f:
      json.dump(metadata, f, indent=1)
    if os.path.exists(out):
      shutil.rmtree(out)
    os.replace(staging, out)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return metadata


def main(argv):
  from fashion_jax import cli, writers

  writers.quiet_library_logs()

  @cli.report_errors
  def run(argv):
    unknown = sorted(set(FLAGS.platforms) - set(PLATFORMS))
    if len(argv) > 1 or unknown:  # a bad command line: one line, exit 2 (no help text)
      said = (f"unexpected arguments: {argv[1:]}" if len(argv) > 1 else
              f"--platforms: unknown {', '.join(unknown)}; use some of {', '.join(PLATFORMS)}")
      sys.stderr.write(f"error: {said}\n")
      sys.exit(2)
    metadata = export_model(FLAGS.workdir, FLAGS.out, FLAGS.platforms)
    print(f"exported {metadata['system']} ({metadata['checkpoint']} of {FLAGS.workdir}) for "
          f"{', '.join(metadata['platforms'])} -> {FLAGS.out}")

  return run(argv)


FLAGS = flags.FLAGS

if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "Workdir of a trained run.")
  flags.DEFINE_string("out", None, "Folder to write (replaced if it is an earlier export).")
  flags.DEFINE_list("platforms", list(PLATFORMS), "Platforms to lower for.")
  flags.mark_flags_as_required(["workdir", "out"])
  from fashion_jax import cli as _cli

  app.run(main, flags_parser=_cli.parse_flags)
