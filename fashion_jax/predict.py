r"""Inference on image files with a trained run: JSON of predictions and overlay pictures.

  python -m fashion_jax.predict --workdir=W --images='photos/*.jpg' --out=predictions/

Uses the run's config and its best checkpoint (else the latest); the dataset need not be on
disk. Each image is prepared as in evaluation (the whole image, or a box given with
`--boxes=boxes.csv`, rows `file,x1,y1,x2,y2`); point predictions are mapped back to the original
image's pixels. Writes `predictions.json` ({file: {name: value}}) and `<stem>.png` overlays.
"""

from __future__ import annotations

import csv
import glob
import json
import os

import cv2
import jax
import numpy as np
from absl import app, flags

from fashion_jax import checkpoints, compile_cache, models, state, steps, visualize, writers
from fashion_jax import run as run_lib
from fashion_jax.data import pipeline, schema, transforms

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Workdir of a trained run.")
flags.DEFINE_string("images", None, "Glob of image files.")
flags.DEFINE_string("out", "predictions", "Output directory.")
flags.DEFINE_string("boxes", None, "Optional CSV of file,x1,y1,x2,y2 garment boxes.")
flags.DEFINE_integer("batch_size", 8, "Images per forward pass.")


class Predictor:
  """A trained run's model as a function of original images."""

  def __init__(self, workdir: str):
    self.config = run_lib.load_config(workdir)
    self.system = models.get_system(self.config.system)
    self.spec = run_lib.load_dataset_spec(workdir)
    self.module = self.system.make_module(self.config.model, self.spec)
    self.example_fn = pipeline.make_example_fn(self.config.data, train=False)
    ckpt = checkpoints.Checkpointer(workdir, *self.system.best_metric)
    try:
      template = self._init_variables()
      if ckpt.best_step() is not None:
        self.variables = ckpt.restore_best(template)
      elif ckpt.latest_step() is not None:
        self.variables = _variables_from_state(ckpt, template)
      else:
        raise FileNotFoundError(f"no checkpoint in {workdir}: train first")
    finally:
      ckpt.close()
    self._apply = steps.compile_predict_step(self.module, self.system)

  def _example(self, image: np.ndarray, box=None) -> dict:
    example = schema.empty_example(self.spec.num_attributes)
    example.update(image=image, mask=np.zeros((*image.shape[:2], 1), np.uint8))
    if box is not None:
      example.update(bbox=np.asarray(box, np.float32), has_bbox=np.bool_(True))
    return self.example_fn(example, np.random.default_rng(0))

  def _init_variables(self) -> dict:
    """The structure the checkpoint is restored into (its values are replaced)."""
    return state.init_variables(
        self.module, self.system.batch_fields,
        self.system.batch_source.blank_example(self.config.data, self.spec), 0)

  def __call__(self, images: list[np.ndarray], boxes=None) -> tuple[list[dict], dict]:
    """RGB uint8 images -> per image {prediction name: value}, points in original pixels;
    also returns the prepared batch and raw predictions (network-input frame) for drawing."""
    examples = [self._example(img, None if boxes is None else boxes[i])
                for i, img in enumerate(images)]
    batch = {k: np.stack([np.asarray(e[k]) for e in examples]) for k in examples[0]}
    raw = jax.tree.map(np.asarray, self._apply(self.variables, {
        k: batch[k] for k in self.system.batch_fields if k in batch}))
    out = [{} for _ in images]
    for name, value in raw.items():
      if value.ndim == 3 and value.shape[-1] == 2:  # a point set: back to original pixels
        value = transforms.to_original(value, batch["transform"])
      for i in range(len(images)):
        out[i][name] = value[i].tolist()
    return out, {"batch": batch, "raw": raw}


def _variables_from_state(ckpt, template):
  """Model variables out of the latest train state (no optimiser structure needed)."""
  import orbax.checkpoint as ocp

  restored = ckpt.latest.restore(ckpt.latest_step(), args=ocp.args.StandardRestore())
  return {k: restored[k] for k in template if k in restored}


def read_boxes(path: str) -> dict[str, list[float]]:
  boxes = {}
  with open(path, newline="") as f:
    for line, row in enumerate(csv.reader(f), 1):
      if len(row) != 5:
        raise ValueError(f"{path}:{line}: expected file,x1,y1,x2,y2, got {len(row)} columns")
      try:
        boxes[os.path.basename(row[0])] = [float(v) for v in row[1:]]
      except ValueError as e:
        raise ValueError(f"{path}:{line}: non-numeric box {row[1:]}") from e
  return boxes


def read_rgb(path: str) -> np.ndarray:
  image = cv2.imread(path, cv2.IMREAD_COLOR)
  if image is None:
    raise ValueError(f"{path}: not a readable image")
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def main(argv):
  del argv
  writers.quiet_library_logs()
  compile_cache.enable()
  files = sorted(glob.glob(FLAGS.images))
  if not files:
    raise app.UsageError(f"no files match {FLAGS.images!r}")
  boxes = read_boxes(FLAGS.boxes) if FLAGS.boxes else None
  predictor = Predictor(FLAGS.workdir)
  os.makedirs(FLAGS.out, exist_ok=True)
  results = {}
  for start in range(0, len(files), FLAGS.batch_size):
    chunk = files[start:start + FLAGS.batch_size]
    box_list = None if boxes is None else [boxes[os.path.basename(f)] for f in chunk]
    outputs, drawn = predictor([read_rgb(f) for f in chunk], box_list)
    for i, (path, out) in enumerate(zip(chunk, outputs, strict=True)):
      results[path] = out
      points = {k: v[i:i + 1] for k, v in drawn["raw"].items()}
      batch = {k: v[i:i + 1] for k, v in drawn["batch"].items()}
      for name in ("keypoints", "landmarks"):  # no ground truth: draw predictions only
        batch[f"{name}_visibility"] = np.full_like(batch[f"{name}_visibility"], schema.VISIBLE)
        batch[name] = points[name] if name in points else batch[name]
      picture = visualize.prediction_grid(batch, points, n=1)
      if picture is not None:
        stem = os.path.splitext(os.path.basename(path))[0]
        visualize.save_png(os.path.join(FLAGS.out, f"{stem}.png"), picture)
  with open(os.path.join(FLAGS.out, "predictions.json"), "w") as f:
    json.dump(results, f, indent=1)
  print(f"{len(results)} images -> {FLAGS.out}/predictions.json")


if __name__ == "__main__":
  flags.mark_flags_as_required(["workdir", "images"])
  app.run(main)

