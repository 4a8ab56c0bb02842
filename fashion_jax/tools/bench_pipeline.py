"""The input pipeline against its floor: one worker of each system's training batch source
against a bare decode + crop + resize of the same JPEG files, measured side by side.

  python -m tools.bench_pipeline --n=600 --image_size=300 --out=docs/benchmarks/pipeline_cpu
  python -m tools.bench_pipeline --systems=landmark_attention --n=300

For each system it writes the synthetic set in its paper dataset's on-disk format (JPEG files of
`--image_size`, the real layout: DeepFashion Category & Attribute for LDA and two-stream,
FashionAI for the pose machine, DCSA for SisterNetwork, Street2Shop-style pairs for MTCT),
prepares it as a user would, and measures in one process:
  * floor: images/s of `cv2.imdecode` of the stored JPEG bytes, the config's crop (the garment
    box, or the whole image) and `cv2.resize` to the network input, on one thread;
  * pipeline: images/s of the paper config's training batches (`data.num_threads=1`: one
    worker), every image a batch row reads counted (MTCT's triplet rows read three).
The ratio pipeline / floor is the pipeline's efficiency (target >= 0.7). With the FLOPs of
each system's training step (`--systems_json`, written by `tools.bench_systems`), the table
also gives an accelerator's demand at `--mfu` of its bf16 peak (H100: 989 TFLOP/s; TPU v5e:
197) and how many such workers meet it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

# system -> (config, export format, builder that reads it)
SYSTEMS = {
    "landmark_attention": ("landmark_attention", "deepfashion_attributes",
                           "deepfashion_attributes"),
    "two_stream": ("two_stream", "deepfashion_attributes", "deepfashion_attributes"),
    "fpm": ("fpm", "fashionai", "fashionai_keypoints"),
    "sister": ("sister", "dcsa", "clothing_attributes"),
    "mtct": ("mtct", "shop_street", "shop_street"),
}


def prepared_dataset(fmt: str, builder: str, n: int, image_size: int, root: str) -> str:
  """A data dir holding `n` synthetic images written as `fmt` and prepared."""
  from fashion_jax.data import export, prepare
  from fashion_jax.data.synth import SYNTH_SPEC
  from fashion_jax.tools.export_synth import synth_examples

  manual, data_dir = os.path.join(root, fmt, "manual"), os.path.join(root, fmt, "tfds")
  if not os.path.isdir(data_dir):
    export.export(synth_examples(n, 0, image_size, 2), SYNTH_SPEC, fmt, manual)
    masks = None
    if fmt == "dcsa":  # SisterNetwork's segmented stream reads masks
      masks = os.path.join(root, fmt, "masks")
      write_masks(manual, masks)
    prepare.prepare(builder, manual, data_dir, masks_dir=masks)
  return data_dir


def write_masks(manual: str, masks: str) -> None:
  """A whole-image person mask per JPEG (the benchmark times reading, not segmenting)."""
  from PIL import Image

  from fashion_jax.data import formats

  for folder, _, files in os.walk(manual):
    for name in files:
      if name.lower().endswith(".jpg"):
        path = os.path.join(folder, name)
        relative = os.path.relpath(path, manual)
        with Image.open(path) as image:
          size = image.size
        target = formats.mask_path(masks, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        Image.new("L", size, 255).save(target)


def system_config(name: str, data_dir: str):
  from fashion_jax import cli
  from fashion_jax.data import datasets

  config = cli.load_config_file(SYSTEMS[name][0])
  config.data.data_dir = data_dir
  # The synthetic export's configuration (e.g. coarse_41attr: the synthetic set's attributes).
  if getattr(datasets.builder_class(SYSTEMS[name][2]), "BUILDER_CONFIGS", None):
    config.data.builder_config = datasets.prepared_config(SYSTEMS[name][2], data_dir)
  config.data.num_threads = 1  # one worker
  config.model.from_scratch = True  # timing the input, not the weights
  return config


def floor_rate(config, seconds: float = 3.0) -> float:
  """Images/s of decode + crop + resize of the training split's stored JPEGs, one thread."""
  import cv2
  import tensorflow_datasets as tfds

  from fashion_jax import config_base
  from fashion_jax.data import datasets, geometry

  builder = datasets.get_builder(config_base.dataset_name(config.data), config.data.data_dir,
                                 config=config_base.builder_config(config.data))
  source = builder.as_data_source(decoders={"image": tfds.decode.SkipDecoding(),
                                            "mask": tfds.decode.SkipDecoding()})
  split = config.data.train_split.split("[")[0]
  records = [source[split][i] for i in range(min(len(source[split]), 400))]
  h, w = config.data.image_size
  done, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    for record in records:
      image = cv2.imdecode(np.frombuffer(record["image"], np.uint8), cv2.IMREAD_COLOR)
      x1, y1, x2, y2 = geometry.crop_box(
          {"image": image, "bbox": record["bbox"], "has_bbox": record["has_bbox"]},
          config.data.crop, config.data.bbox_margin).astype(int)
      crop = image[max(y1, 0):max(y2, y1 + 1), max(x1, 0):max(x2, x1 + 1)]
      cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
      done += 1
  return done / (time.perf_counter() - start)


def pipeline_rate(config, batches: int) -> tuple[float, float]:
  """(images/s, images per batch row) of the first phase's training batches, one worker."""
  from fashion_jax import run

  with tempfile.TemporaryDirectory(prefix="fashion_jax_bench_pipeline_") as workdir:
    this = run.Run(config, os.path.join(workdir, "run"))
    try:
      data = this.train_data(this.phases[0], seed=0, start_step=0)
      it = this.system.batch_source.batches(data)
      first = next(it)
      next(it)
      per_row = int(np.prod(first["image"].shape[:-3])) / config.batch_size
      start = time.perf_counter()
      for _ in range(batches):
        next(it)
      seconds = time.perf_counter() - start
    finally:
      this.close()
  return batches * config.batch_size * per_row / seconds, per_row


ACCELERATORS = {"H100": 989.0, "TPU v5e": 197.0}  # dense bf16 TFLOP/s


def gflop_per_image(systems_json: str | None) -> dict[str, float]:
  """{system: training GFLOP per image} from a `tools.bench_systems` JSON (empty without)."""
  if not systems_json or not os.path.exists(systems_json):
    return {}
  with open(systems_json) as f:
    rows = json.load(f)
  return {r["system"]: r["flops"] / r["batch"] / 1e9 for r in rows if r.get("flops")}


def demand(row: dict, gflop: float, mfu: float) -> dict:
  """Images/s an accelerator consumes at `mfu`, and the workers of this speed that feed it."""
  out = {"gflop_per_image": gflop}
  for name, peak in ACCELERATORS.items():
    images = peak * 1e3 * mfu / gflop
    out[f"{name} images/s"] = images
    out[f"{name} workers"] = math.ceil(images / row["pipeline_images_per_s"])
  return out


def cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    import platform

    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--systems", default=",".join(SYSTEMS))
  parser.add_argument("--n", type=int, default=600, help="images written per format")
  parser.add_argument("--image_size", type=int, default=300)
  parser.add_argument("--batches", type=int, default=10)
  parser.add_argument("--work", default=None, help="folder for the prepared sets (kept)")
  parser.add_argument("--out", default=None, help="write OUT.md and OUT.json")
  parser.add_argument("--systems_json", default="docs/benchmarks/systems_cpu.json",
                      help="tools.bench_systems JSON: the training FLOPs per image")
  parser.add_argument("--mfu", type=float, default=0.5, help="the accelerator's assumed MFU")
  args = parser.parse_args(argv)
  names = [s for s in args.systems.split(",") if s]
  unknown = sorted(set(names) - set(SYSTEMS))
  if unknown:
    print(f"error: --systems: unknown {unknown}; known: {', '.join(SYSTEMS)}", file=sys.stderr)
    return 2
  root = args.work or tempfile.mkdtemp(prefix="fashion_jax_pipeline_data_")
  flops = gflop_per_image(args.systems_json)
  rows = []
  for name in names:
    _, fmt, builder = SYSTEMS[name]
    config = system_config(name, prepared_dataset(fmt, builder, args.n, args.image_size, root))
    floor = floor_rate(config)
    rate, per_row = pipeline_rate(config, args.batches)
    rows.append({"system": name, "dataset": fmt, "input": list(config.data.image_size),
                 "batch": config.batch_size, "images_per_row": per_row,
                 "floor_images_per_s": floor, "pipeline_images_per_s": rate,
                 "ratio": rate / floor})
    if name in flops:
      rows[-1].update(demand(rows[-1], flops[name], args.mfu))
    print(f"{name}: pipeline {rate:.0f} images/s, floor {floor:.0f} images/s, "
          f"ratio {rate / floor:.2f}", flush=True)
  text = markdown(rows, args, cpu_name())
  print(text)
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".md", "w") as f:
      f.write(text)
    with open(args.out + ".json", "w") as f:
      json.dump({"cpu": cpu_name(), "image_size": args.image_size, "n": args.n, "rows": rows},
                f, indent=1)
  return 0


def markdown(rows: list[dict], args, cpu: str) -> str:
  lines = [f"One worker of each training pipeline against a bare decode + crop + resize of the "
           f"same {args.image_size}x{args.image_size} JPEGs ({cpu}, one thread each; "
           f"`python -m tools.bench_pipeline --n={args.n} --image_size={args.image_size}`).", "",
           "| system | dataset format | input | images/row | floor images/s | pipeline "
           "images/s | ratio |", "|---|---|---|---:|---:|---:|---:|"]
  for r in rows:
    lines.append(f"| {r['system']} | {r['dataset']} | {r['input'][0]}x{r['input'][1]} | "
                 f"{r['images_per_row']:g} | {r['floor_images_per_s']:.0f} | "
                 f"{r['pipeline_images_per_s']:.0f} | {r['ratio']:.2f} |")
  fed = [r for r in rows if "gflop_per_image" in r]
  if fed:
    names = list(ACCELERATORS)
    lines += ["", f"What one accelerator consumes at {args.mfu:.0%} MFU (bf16 peak: "
              + ", ".join(f"{n} {p:g} TFLOP/s" for n, p in ACCELERATORS.items())
              + "), from each training step's FLOPs, and the workers of the speed above that "
              "feed it:", "",
              "| system | GFLOP/image | " + " | ".join(f"{n} images/s | workers" for n in names)
              + " |", "|---|---:|" + "---:|---:|" * len(names)]
    for r in fed:
      lines.append(f"| {r['system']} | {r['gflop_per_image']:.1f} | " + " | ".join(
          f"{r[f'{n} images/s']:.0f} | {r[f'{n} workers']}" for n in names) + " |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  sys.exit(main())
