"""Writes a PNG of garments with their landmarks, hull boundary and blurred attention map.

Run from the repository root:

  python -m tools.show_boundary --out=boundary.png
  python -m tools.show_boundary --source=random --count=4 --sigma=6

Each garment gets two panels: the image with its landmarks (filled dot: visible, ring: occluded
or truncated) and the Bresenham hull boundary in red; and the image under the attention map of
`fashion_jax.ops.boundary.boundary_attention` (colour map), boundary on top. `--source=synth` draws
garments with the built-in synthetic renderer; `--source=random` draws garment-like landmark sets
on a plain canvas; `auto` (the default) uses the renderer when it is installed. Landmarks whose
visibility is ABSENT are left out; occluded and truncated ones still mark the garment's extent.
"""

from __future__ import annotations

import argparse

import cv2
import jax.numpy as jnp
import numpy as np

from fashion_jax.data import schema
from fashion_jax.ops import boundary
from tools.bench_boundary import garment_like_landmarks

RED, GREEN, WHITE = (255, 40, 40), (40, 220, 40), (255, 255, 255)


def synth_examples(count: int, size: int, seed: int):
  """(image uint8 [H, W, 3] RGB, landmarks [8, 2], visibility [8]) from the synthetic renderer."""
  from fashion_jax.data.synth import SynthOptions, render_example

  for index in range(count):
    ex = render_example(seed=seed, index=index, options=SynthOptions(image_size=size))
    yield ex["image"], ex["landmarks"], ex["landmarks_visibility"]


def random_examples(count: int, size: int, seed: int):
  """Garment-like landmark sets on a plain canvas, some landmarks occluded or absent."""
  rng = np.random.default_rng(seed)
  points, valid = garment_like_landmarks(rng, count, len(schema.LANDMARK_NAMES), size)
  occluded = rng.random(valid.shape) < 0.2
  visibility = np.where(valid, np.where(occluded, schema.OCCLUDED, schema.VISIBLE),
                        schema.ABSENT).astype(np.int8)
  canvas = np.full((size, size, 3), 235, np.uint8)
  for b in range(count):
    yield canvas, points[b], visibility[b]


def render_panels(image, landmarks, visibility, sigma: float) -> np.ndarray:
  """Two captioned panels side by side, RGB: landmarks + boundary, attention overlay."""
  height, width = image.shape[:2]
  valid = visibility != schema.ABSENT
  args = (jnp.asarray(landmarks)[None], jnp.asarray(valid)[None], height, width)
  edge = np.asarray(boundary.boundary_raster(*args))[0]
  attention = np.asarray(boundary.boundary_attention(*args, sigma))[0]

  outline = image.copy()
  outline[edge] = RED
  for (x, y), vis in zip(landmarks, visibility, strict=True):
    if vis != schema.ABSENT:
      centre = (int(round(float(x))), int(round(float(y))))
      cv2.circle(outline, centre, 4, GREEN, thickness=-1 if vis == schema.VISIBLE else 1,
                 lineType=cv2.LINE_AA)
  heat = cv2.applyColorMap(np.uint8(255 * attention), cv2.COLORMAP_JET)[..., ::-1]  # BGR -> RGB
  overlay = np.uint8(0.45 * image + 0.55 * heat)
  overlay[edge] = WHITE
  panels = []
  for panel, text in ((outline, "landmarks + boundary"), (overlay, f"attention, sigma {sigma:g}")):
    caption = np.full((22, width, 3), 40, np.uint8)
    cv2.putText(caption, text, (6, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, WHITE, 1, cv2.LINE_AA)
    panels.append(np.concatenate([caption, panel], axis=0))
  return np.concatenate(panels, axis=1)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="boundary.png")
  parser.add_argument("--source", choices=("auto", "synth", "random"), default="auto")
  parser.add_argument("--count", type=int, default=4)
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--sigma", type=float, default=8.0, help="blur sigma in image pixels")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  source = args.source
  if source == "auto":
    try:
      import fashion_jax.data.synth  # noqa: F401
      source = "synth"
    except ImportError:
      source = "random"
  examples = (synth_examples if source == "synth" else random_examples)(
      args.count, args.size, args.seed)
  rows = [render_panels(*example, args.sigma) for example in examples]
  gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
  picture = np.concatenate([part for row in rows for part in (row, gap)][:-1], axis=0)
  cv2.imwrite(args.out, picture[..., ::-1])  # RGB -> BGR
  print(f"wrote {args.out} ({source} garments, {picture.shape[1]}x{picture.shape[0]})")


if __name__ == "__main__":
  main()
