r"""Predictions for image files with a trained model: JSON, one overlay picture per image, and
optionally the benchmarks' own list formats.

  python -m fashion_jax.predict --workdir=W --images=photos/ --out=P
  python -m fashion_jax.predict --workdir=EXPORT --images='a/*.jpg,b/*.png' --out=P

`--workdir` is a run's workdir or an export folder (`fashion_jax.load`). `--images` is a folder
(searched recursively) or comma-separated globs. Outputs mirror the images' paths relative to
their root (the folder given, else the common folder of the matches): `P/predictions.json`
keyed by that path, `P/<path without extension>.png` overlays, and `P/skipped.json` for the
images that could not be used (undecodable, over `--max_pixels`, a folder, no box row, no
mask); the others are predicted all the same and the exit status is then 3. docs/inference_cli.md
describes the files and the writers (`--fashionai_csv`, `--deepfashion_landmarks`,
`--deepfashion_categories`). Exit statuses: 0 done, 1 an error the message explains (no
checkpoint, a damaged export, a malformed boxes file), 2 a bad command line, 3 some skipped.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import posixpath
import sys

import numpy as np
import PIL.Image
import tqdm
from absl import app, flags, logging

import fashion_jax
from fashion_jax import cli, compile_cache, inference, prediction_lists, visualize, writers
from fashion_jax.data import formats

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A run's workdir, or an export folder (fashion-jax export).")
flags.DEFINE_string("images", None, "A folder (searched recursively for .jpg .jpeg .png .bmp "
                    ".webp) or comma-separated globs.")
flags.DEFINE_string("out", "predictions", "Output directory.")
flags.DEFINE_string("boxes", None, "CSV of file,x1,y1,x2,y2 garment boxes in pixels, `file` the "
                    "image's path relative to the images' root; for models that crop to the "
                    "garment. An image without a row is skipped.")
flags.DEFINE_string("masks", None, "Folder of person masks, <relative path without extension>"
                    ".png (nonzero = person), for models that read a segmented image.")
flags.DEFINE_string("segmenter", None, "The FCN segmenter's converted weights: person masks "
                    "made from each photo, for models that read a segmented image (instead of "
                    "--masks; a workdir only, not an export).")
flags.DEFINE_integer("batch_size", 8, "Images per forward pass.", lower_bound=1)
flags.DEFINE_integer("max_pixels", formats.DEFAULT_MAX_PIXELS,
                     "Images with more pixels (width x height, read from the header before "
                     "decoding) are skipped.", lower_bound=1)
flags.DEFINE_integer("top_k", inference.TOP_K, "Categories listed per image.", lower_bound=1)
flags.DEFINE_float("visible_threshold", inference.VISIBLE_THRESHOLD,
                   "A point is visible when its confidence (heatmap peak) reaches this.")
flags.DEFINE_string("fashionai_csv", None, "Also write the FashionAI challenge submission CSV.")
flags.DEFINE_string("deepfashion_landmarks", None, "Also write a DeepFashion list_landmarks.txt.")
flags.DEFINE_string("deepfashion_categories", None,
                    "Also write a DeepFashion list_category_img.txt.")

SOME_SKIPPED = 3  # exit status: finished, but some images were skipped (skipped.json)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
BOXES_HEADER = ["file", "x1", "y1", "x2", "y2"]
MAX_REPORTED_ROWS = 10  # box rows for images not given: named one per line up to this many


CommandLineError = cli.CommandLineError  # exit status 2; the message names the flag


# --------------------------------------------------------------------------------------------
# Inputs


def find_images(spec: str, out_dir: str) -> tuple[list[str], str]:
  """(image paths in a stable order, their root folder) for `--images`: a folder (its images,
  recursively; the root is the folder) or comma-separated globs (every match, folders too, so
  that they are reported; the root is the common folder). Nothing under `out_dir` is an input
  (a rerun must not read its own overlays)."""
  out = os.path.abspath(out_dir)
  outside = lambda p: os.path.commonpath([os.path.abspath(p), out]) != out
  if os.path.isdir(spec):
    paths = []
    for folder, dirs, files in os.walk(spec):
      dirs[:] = sorted(d for d in dirs if outside(os.path.join(folder, d)))
      paths += [os.path.join(folder, f) for f in sorted(files)
                if f.lower().endswith(IMAGE_EXTENSIONS)]
    if not paths:
      kinds = ", ".join(IMAGE_EXTENSIONS)
      raise CommandLineError(f"--images={spec}: the folder holds no image ({kinds}, any case) "
                             "in it or its subfolders")
    return paths, os.path.abspath(spec)
  patterns = [p.strip() for p in spec.split(",") if p.strip()]
  if not patterns:
    raise CommandLineError("--images is empty: give a folder or globs")
  paths, seen = [], set()
  for pattern in patterns:
    matches = [m for m in sorted(glob.glob(pattern, recursive=True)) if outside(m)]
    if not matches:
      raise CommandLineError(f"--images: {pattern!r} matches no file")
    for m in matches:
      if os.path.abspath(m) not in seen:
        seen.add(os.path.abspath(m))
        paths.append(m)
  return paths, os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])


def relative_name(path: str, root: str) -> str:
  """The name of an image in every output: its path relative to `root`, with / separators."""
  return os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")


def overlay_names(names: list[str]) -> dict[str, str]:
  """{relative name: overlay file}: the name with .png for its extension, or with .png added
  where two inputs differ in their extension only (a.jpg, a.png)."""
  stems = [posixpath.splitext(n)[0] for n in names]
  return {n: f"{s}.png" if stems.count(s) == 1 else f"{n}.png"
          for n, s in zip(names, stems, strict=True)}


def _box_key(name: str) -> str:
  return posixpath.normpath(name.strip().replace("\\", "/"))


def read_box_rows(path: str) -> dict[str, tuple[int, list[float]]]:
  """{relative name: (line, [x1, y1, x2, y2])} of a boxes CSV. A first row whose box columns are
  not numbers is a header; a malformed row is refused naming its line."""
  rows = {}
  with open(path, newline="") as f:
    reader = csv.reader(f)
    for row in reader:
      line = reader.line_num
      if not any(c.strip() for c in row):
        continue
      if len(row) != 5:
        raise ValueError(f"{path}:{line}: expected file,x1,y1,x2,y2, got {len(row)} columns")
      try:
        box = [float(v) for v in row[1:]]
      except ValueError:
        if not rows and line == 1:  # a header
          if [c.strip() for c in row] != BOXES_HEADER:
            sys.stderr.write(f"note: {path}:1: header {','.join(row)} taken as "
                             "file,x1,y1,x2,y2 (the columns are read in that order)\n")
          continue
        raise ValueError(f"{path}:{line}: non-numeric box {row[1:]}; expected the columns "
                         "file,x1,y1,x2,y2 (x1..y2 in pixels)") from None
      name = _box_key(row[0])
      if not all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"{path}:{line}: box {box} is not finite with x2 > x1 and y2 > y1")
      if name in rows:
        raise ValueError(f"{path}:{line}: a second box for {name} (first on line "
                         f"{rows[name][0]})")
      rows[name] = (line, box)
  if not rows:
    raise ValueError(f"{path}: no boxes")
  return rows


def read_boxes(path: str) -> dict[str, list[float]]:
  """{relative name: [x1, y1, x2, y2]} of a boxes CSV (see `read_box_rows`)."""
  return {name: box for name, (_, box) in read_box_rows(path).items()}


def report_unused_rows(path: str, rows: dict, names: list[str], root: str) -> None:
  """Names on stderr the box rows for images that are not among the inputs (they are ignored)."""
  given = set(names)
  unused = [(line, name) for name, (line, _) in rows.items() if name not in given]
  for line, name in unused[:MAX_REPORTED_ROWS]:
    sys.stderr.write(f"warning: {path}:{line}: {name} is not among the images (names are "
                     f"relative to {root}); row ignored\n")
  if len(unused) > MAX_REPORTED_ROWS:
    sys.stderr.write(f"warning: {path}: {len(unused) - MAX_REPORTED_ROWS} more rows for "
                     "images not given; ignored\n")


def read_mask(masks_dir: str, name: str, image_hw: tuple[int, int], max_pixels: int):
  """[H, W] uint8 person mask (1 = person) of image `name`; ValueError saying why not."""
  path = formats.mask_path(masks_dir, name)
  if not path.is_file():
    raise ValueError(f"no mask {path} (--masks holds <relative path without extension>.png "
                     "per image)")
  mask = formats.read_rgb(path, max_pixels).max(axis=-1) > 0  # any non-black pixel
  if mask.shape != tuple(image_hw):
    raise ValueError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but the image is "
                     f"{image_hw[1]}x{image_hw[0]}")
  return mask.astype(np.uint8)


def load_input(path: str, name: str, boxes: dict | None, masks_dir: str | None,
               max_pixels: int) -> tuple:
  """(RGB image [H, W, 3], box or None, mask [H, W] or None) of one input; ValueError (an
  ImageError for the image itself) saying why it cannot be used."""
  if os.path.isdir(path):
    raise ValueError(f"{path}: a folder, not an image")
  image = formats.read_rgb(path, max_pixels)
  h, w = image.shape[:2]
  box = None
  if boxes is not None:
    box = boxes.get(name)
    if box is None:
      raise ValueError(f"{path}: no row for {name} in the --boxes file")
    if box[0] >= w or box[1] >= h or box[2] <= 0 or box[3] <= 0:
      raise ValueError(f"{path}: box {box} lies outside the {w}x{h} image")
  mask = None if masks_dir is None else read_mask(masks_dir, name, (h, w), max_pixels)
  return image, box, mask


# --------------------------------------------------------------------------------------------
# The model


def system_name(model) -> str:
  return str(getattr(model.system, "name", model.system))


def predicted_fields(model) -> set[str]:
  """The result fields the model gives (one blank image through it: the same compiled program
  as the real batches, so it costs one batch)."""
  h, w = model.preprocess.input_hw
  masks = [np.ones((h, w), np.uint8)] if model.preprocess.segmented else None
  return set(model.predict([np.zeros((h, w, 3), np.uint8)], masks=masks)[0])


def check_model(model, boxes: bool, masks: bool, writer_flags: dict[str, str]) -> None:
  """Refuses (CommandLineError) flags that this model cannot use."""
  pre, system = model.preprocess, system_name(model)
  if boxes and pre.crop != "bbox":
    raise CommandLineError(f"--boxes: this {system} model reads the whole image (its crop rule "
                           f"is {pre.crop!r}), so boxes would be ignored; leave --boxes out")
  if pre.segmented and not masks and getattr(model, "segmenter", None) is None:
    raise CommandLineError(
        f"this {system} model reads a segmented image beside the photo (background filled "
        f"{pre.segmented}), so it needs a person mask per image: give --masks=DIR with "
        "DIR/<image path relative to the images' root, without extension>.png (nonzero = "
        "person), e.g. from tools/segment.py, or --segmenter=FILE, the FCN segmenter's "
        "converted weights, to make them from the photos (docs/pretrained.md)")
  if masks and not pre.segmented:
    raise CommandLineError(f"--masks: this {system} model reads no segmented image; leave "
                           "--masks out")
  if writer_flags:
    fields = predicted_fields(model)
    for flag in writer_flags:
      needed = prediction_lists.NEEDS[flag]
      if needed not in fields:
        raise CommandLineError(f"--{flag}: this {system} model predicts no {needed} (it gives "
                               f"{', '.join(sorted(fields))})")


def predict_chunk(model, chunk: list[tuple], options: dict) -> list[tuple[str, object]]:
  """[(name, result or the InputError that refused it)] for [(name, image, box, mask)]. One
  call per chunk; should the model refuse it, each image alone, so one bad image costs only
  itself."""
  names, images, boxes, masks = zip(*chunk, strict=True)
  kwargs = dict(boxes=None if boxes[0] is None else list(boxes),
                masks=None if masks[0] is None else list(masks), **options)
  try:
    return list(zip(names, model.predict(list(images), **kwargs), strict=True))
  except inference.InputError:
    if len(chunk) == 1:
      raise
  out = []
  for item in chunk:
    try:
      out += predict_chunk(model, [item], options)
    except inference.InputError as e:
      out.append((item[0], e))
  return out


def json_result(result: dict) -> dict:
  """A result as JSON values: tuples become lists, the boundary map (an array) is left out."""
  return json.loads(json.dumps({k: v for k, v in result.items() if k != "boundary_map"}))


def run(model, inputs: list[tuple[str, str]], out_dir: str, boxes: dict | None = None,
        masks_dir: str | None = None, *, batch_size: int = 8,
        max_pixels: int = formats.DEFAULT_MAX_PIXELS, **options) -> tuple[dict, dict]:
  """Predicts `inputs` [(path, relative name)] and writes their overlays under `out_dir`.

  Returns ({name: JSON result}, {name: why it was skipped}), both in input order.
  """
  options = dict(options, boundary_map=True, max_pixels=max_pixels)  # a map where there is one
  pictures = overlay_names([name for _, name in inputs])
  results, skipped, chunk = {}, {}, []

  def flush():
    images = {name: image for name, image, _, _ in chunk}
    for name, result in predict_chunk(model, chunk, options):
      if isinstance(result, Exception):
        skipped[name] = str(result)
        continue
      picture = visualize.overlay_on_original(images[name], result, show_crop=boxes is not None)
      path = os.path.join(out_dir, pictures[name])
      try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        visualize.save_png(path, picture)
      except OSError as e:  # a full disk, an unwritable --out
        raise OSError(f"{e.strerror or e}; the {len(results)} overlay(s) written before it "
                      f"are kept in {out_dir}, predictions.json is not written. Free space or "
                      "choose another --out, then run the same command again.") from None
      results[name] = json_result(result)
    chunk.clear()

  for path, name in tqdm.tqdm(inputs, desc="predict", disable=len(inputs) < 2 * batch_size):
    try:
      chunk.append((name, *load_input(path, name, boxes, masks_dir, max_pixels)))
    except ValueError as e:  # an unusable image: listed, the others go on
      skipped[name] = str(e)
      logging.warning("skipped %s", e)
    if len(chunk) == batch_size:
      flush()
  if chunk:
    flush()
  order = {name: i for i, (_, name) in enumerate(inputs)}
  return (dict(sorted(results.items(), key=lambda kv: order[kv[0]])),
          dict(sorted(skipped.items(), key=lambda kv: order[kv[0]])))


# --------------------------------------------------------------------------------------------
# The command


def json_text(mapping: dict) -> str:
  """{name: value} as JSON with one line per name (grep-able; `json.load` reads it)."""
  return "{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in mapping.items()
                             ) + "\n}\n"


def check_list_names(writer_flags: dict[str, str], names: list[str]) -> None:
  """DeepFashion's lists are split on whitespace, so names with spaces cannot go in them."""
  spaced = [n for n in names if any(c.isspace() for c in n)]
  for flag in ("deepfashion_landmarks", "deepfashion_categories"):
    if flag in writer_flags and spaced:
      raise CommandLineError(f"--{flag}: DeepFashion's lists separate columns by whitespace, "
                             f"so {spaced[0]!r} ({len(spaced)} names with spaces) cannot be "
                             "written; rename those files")


def _inputs_and_boxes() -> tuple[list[tuple[str, str]], dict | None]:
  paths, root = find_images(FLAGS.images, FLAGS.out)
  inputs = [(p, relative_name(p, root)) for p in paths]
  if not FLAGS.boxes:
    return inputs, None
  rows = read_box_rows(FLAGS.boxes)
  report_unused_rows(FLAGS.boxes, rows, [n for _, n in inputs], root)
  return inputs, {name: box for name, (_, box) in rows.items()}


def _predict_command() -> int:
  inputs, boxes = _inputs_and_boxes()
  writer_flags = {f: getattr(FLAGS, f) for f in prediction_lists.NEEDS if getattr(FLAGS, f)}
  check_list_names(writer_flags, [n for _, n in inputs])
  if FLAGS.masks and not os.path.isdir(FLAGS.masks):
    raise CommandLineError(f"--masks={FLAGS.masks}: no such folder")
  model = fashion_jax.load(FLAGS.workdir, FLAGS.batch_size, segmenter=FLAGS.segmenter)
  check_model(model, boxes is not None, bool(FLAGS.masks), writer_flags)
  if model.preprocess.crop == "bbox" and boxes is None:
    sys.stderr.write(f"note: this {system_name(model)} model was trained on garment crops; "
                     "without --boxes it reads each whole image\n")
  os.makedirs(FLAGS.out, exist_ok=True)
  results, skipped = run(model, inputs, FLAGS.out, boxes, FLAGS.masks,
                         batch_size=FLAGS.batch_size, max_pixels=FLAGS.max_pixels,
                         top_k=FLAGS.top_k, visible_threshold=FLAGS.visible_threshold)
  return _write_files(model, inputs, results, skipped, writer_flags)


def _write_files(model, inputs, results: dict, skipped: dict, writer_flags: dict) -> int:
  """predictions.json, the writers' files and skipped.json; the exit status."""
  prediction_lists.write_atomic(os.path.join(FLAGS.out, "predictions.json"), json_text(results))
  print(f"{len(results)} images ({model.checkpoint}) -> {FLAGS.out}/predictions.json")
  parents = {n: os.path.basename(os.path.dirname(os.path.abspath(p))) for p, n in inputs}
  for flag, path in writer_flags.items():
    prediction_lists.write(flag, path, results, model.names.categories, parents)
    print(f"--{flag}: {len(results)} images -> {path}")
  skipped_path = os.path.join(FLAGS.out, "skipped.json")
  if not skipped:
    if os.path.exists(skipped_path):  # a previous run's list would mislead
      os.remove(skipped_path)
    return 0
  prediction_lists.write_atomic(skipped_path, json_text(skipped))
  print(f"{len(skipped)} images skipped, with the reasons, in {skipped_path}")
  return SOME_SKIPPED


@cli.report_errors
def main(argv):
  if len(argv) > 1:
    sys.stderr.write(f"error: unexpected arguments {argv[1:]} (several globs: one --images "
                     "value, comma-separated and quoted)\n")
    sys.exit(2)
  writers.quiet_library_logs()
  compile_cache.enable()
  PIL.Image.MAX_IMAGE_PIXELS = None  # --max_pixels is the one limit (Pillow's is lower)
  sys.exit(_predict_command())  # a CommandLineError exits 2 (cli.report_errors)


if __name__ == "__main__":
  flags.mark_flags_as_required(["workdir", "images"])
  app.run(main, flags_parser=cli.parse_flags)
