r"""Inference on image files with a trained run: JSON of predictions and overlay pictures.

  python -m fashion_jax.predict --workdir=W --images='photos/*.jpg' --out=predictions/

Uses the run's config and its best checkpoint (else the latest); the dataset need not be on
disk. Each image is prepared as in evaluation (the whole image, or, for systems that crop to the
garment, a box given with `--boxes=boxes.csv`, rows `file,x1,y1,x2,y2` in pixels, an optional
header row); point predictions are mapped back to the original image's pixels. Writes
`predictions.json` ({file: {name: value}}) and `<stem>.png` overlays for every usable image.
An image that cannot be used (truncated or corrupt, over `--max_pixels`, no row in the boxes
file, a box outside it) is skipped and listed with the reason in `skipped.json`; the others are
predicted all the same, and the exit status is then 3 (0 when every image was used).
"""

from __future__ import annotations

import csv
import glob
import json
import os
import sys

import jax
import numpy as np
import PIL.Image
import tqdm
from absl import app, flags, logging

from fashion_jax import checkpoints, cli, compile_cache, models, state, steps, visualize, writers
from fashion_jax import run as run_lib
from fashion_jax.data import formats, pipeline, schema, transforms

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Workdir of a trained run.")
flags.DEFINE_string("images", None, "Glob of image files.")
flags.DEFINE_string("out", "predictions", "Output directory.")
flags.DEFINE_string("boxes", None, "Optional CSV of file,x1,y1,x2,y2 garment boxes.")
flags.DEFINE_integer("batch_size", 8, "Images per forward pass.", lower_bound=1)
flags.DEFINE_integer("max_pixels", formats.DEFAULT_MAX_PIXELS,
                     "Images with more pixels (width x height, read from the header before "
                     "decoding) are skipped.", lower_bound=1)

SOME_SKIPPED = 3  # exit status: finished, but some images were skipped (skipped.json)


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
      self.variables = _restore_variables(ckpt, self._init_variables(), workdir)
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
      if value.ndim >= 3 and value.shape[-1] == 2:  # point sets: back to original pixels
        flat = value.reshape(len(value), -1, 2)  # [B, L, 2] or per stage [B, T, L, 2]
        value = transforms.to_original(flat, batch["transform"]).reshape(value.shape)
      for i in range(len(images)):
        out[i][name] = value[i].tolist()
    return out, {"batch": batch, "raw": raw}


def _restore_variables(ckpt, template, workdir: str) -> dict:
  """The best checkpoint's variables, else (none, or it does not restore) the latest's."""
  if ckpt.best_step() is not None:
    try:
      return ckpt.restore_best(template)
    except checkpoints.CheckpointError as e:
      if ckpt.latest_step() is None:
        raise
      logging.warning("%s; using the latest checkpoint (step %d)", e, ckpt.latest_step())
  if ckpt.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint in {workdir}: train first")
  return _variables_from_state(ckpt, template)


def _variables_from_state(ckpt, template):
  """Model variables out of the latest train state (no optimiser structure needed)."""
  import orbax.checkpoint as ocp

  restored = ckpt.latest.restore(ckpt.latest_step(), args=ocp.args.StandardRestore())
  return {k: restored[k] for k in template if k in restored}


BOXES_HEADER = ["file", "x1", "y1", "x2", "y2"]


def read_boxes(path: str) -> dict[str, list[float]]:
  """{file name: [x1, y1, x2, y2]} of a boxes CSV; a malformed row is refused with its line."""
  boxes, lines = {}, {}
  with open(path, newline="") as f:
    for line, row in enumerate(csv.reader(f), 1):
      if line == 1 and [c.strip() for c in row] == BOXES_HEADER:
        continue
      if len(row) != 5:
        raise ValueError(f"{path}:{line}: expected file,x1,y1,x2,y2, got {len(row)} columns")
      try:
        box = [float(v) for v in row[1:]]
      except ValueError:
        raise ValueError(f"{path}:{line}: non-numeric box {row[1:]}") from None
      name = os.path.basename(row[0])
      if not all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"{path}:{line}: box {box} is not finite with x2 > x1 and y2 > y1")
      if name in boxes:
        raise ValueError(f"{path}:{line}: a second box for {name} (first on line "
                         f"{lines[name]})")
      boxes[name], lines[name] = box, line
  if not boxes:
    raise ValueError(f"{path}: no boxes")
  return boxes


def load_input(path: str, boxes: dict | None, max_pixels: int):
  """(RGB image, box or None) of one file; ValueError (ImageError) saying why it is unusable."""
  image = formats.read_rgb(path, max_pixels)
  if boxes is None:
    return image, None
  box = boxes.get(os.path.basename(path))
  if box is None:
    raise ValueError(f"{path}: no row for {os.path.basename(path)} in {FLAGS.boxes}")
  h, w = image.shape[:2]
  if box[0] >= w or box[1] >= h or box[2] <= 0 or box[3] <= 0:
    raise ValueError(f"{path}: box {box} lies outside the {w}x{h} image")
  return image, box


def write_outputs(predictor, chunk, outputs, drawn, results: dict) -> None:
  """Records each image's predictions and writes its overlay picture."""
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


def _write_json(path: str, value) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(value, f, indent=1)
  os.replace(tmp, path)


@cli.report_errors
def main(argv):
  del argv
  writers.quiet_library_logs()
  compile_cache.enable()
  files = sorted(glob.glob(FLAGS.images))
  if not files:
    raise app.UsageError(f"no files match {FLAGS.images!r}")
  boxes = read_boxes(FLAGS.boxes) if FLAGS.boxes else None
  PIL.Image.MAX_IMAGE_PIXELS = None  # --max_pixels is the one limit (Pillow's is lower)
  predictor = Predictor(FLAGS.workdir)
  if boxes is not None and predictor.config.data.crop != "bbox":
    raise app.UsageError(f"--boxes: this run's model reads the whole image (data.crop = "
                         f"{predictor.config.data.crop!r}), so boxes would be ignored; leave "
                         "--boxes out")
  os.makedirs(FLAGS.out, exist_ok=True)
  results, skipped, chunk = {}, {}, []

  def flush():
    outputs, drawn = predictor([image for _, image, _ in chunk],
                               None if boxes is None else [box for _, _, box in chunk])
    write_outputs(predictor, [path for path, _, _ in chunk], outputs, drawn, results)
    chunk.clear()

  for path in tqdm.tqdm(files, desc="predict", disable=len(files) < 2 * FLAGS.batch_size):
    try:
      chunk.append((path, *load_input(path, boxes, FLAGS.max_pixels)))
    except ValueError as e:  # an unusable image: listed, the others go on
      skipped[path] = str(e)
      logging.warning("skipped %s", e)
    if len(chunk) == FLAGS.batch_size:
      flush()
  if chunk:
    flush()
  _write_json(os.path.join(FLAGS.out, "predictions.json"), results)
  print(f"{len(results)} images -> {FLAGS.out}/predictions.json")
  if skipped:
    _write_json(os.path.join(FLAGS.out, "skipped.json"), skipped)
    print(f"{len(skipped)} images skipped, with the reasons, in {FLAGS.out}/skipped.json")
    sys.exit(SOME_SKIPPED)


if __name__ == "__main__":
  flags.mark_flags_as_required(["workdir", "images"])
  app.run(main, flags_parser=cli.parse_flags)
