"""Picture of the synthetic dataset: shop and street views of a few garments with their labels.

  python -m tools.show_synth --out=docs/synthetic.jpg --items=5 --size=144 --seed=3

Each garment gets one row: its shop view and its street views, FashionAI keypoints drawn as
filled (visible) or hollow (occluded) dots, the bbox in blue, the visible-garment mask outlined
in yellow, and a caption with the category and the positive attributes.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from fashion_jax import visualize
from fashion_jax.data.synth import SynthOptions, render_example, spec

BLUE, YELLOW, WHITE = (60, 120, 255), (255, 230, 40), (255, 255, 255)
CAPTION_HEIGHT = 34


def annotated(example: dict) -> np.ndarray:
  """One view with keypoints, bbox and mask outline."""
  panel = visualize.draw_points(example["image"], example["keypoints"],
                                example["keypoints_visibility"], None, scale=1)
  contours, _ = cv2.findContours(example["mask"][..., 0].copy(), cv2.RETR_EXTERNAL,
                                 cv2.CHAIN_APPROX_NONE)
  cv2.drawContours(panel, contours, -1, YELLOW, 1)
  x1, y1, x2, y2 = (int(round(v)) for v in example["bbox"])
  cv2.rectangle(panel, (x1, y1), (x2, y2), BLUE, 1)
  return panel


def caption(example: dict, width: int) -> np.ndarray:
  labels = [name for name, value in zip(spec.ATTRIBUTE_NAMES, example["attributes"], strict=True)
            if value == 1]
  lines = [f"{spec.CATEGORY_NAMES[example['category']]} (item {int(example['item_id'])})",
           ", ".join(labels)]
  strip = np.full((CAPTION_HEIGHT, width, 3), 40, np.uint8)
  for row, text in enumerate(lines):
    cv2.putText(strip, text, (6, 13 + 15 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.4, WHITE, 1,
                cv2.LINE_AA)
  return strip


def picture(items: int, size: int, views: int, seed: int) -> np.ndarray:
  options = SynthOptions(image_size=size, views_per_item=views)
  rows = []
  for item in range(items):
    examples = [render_example(seed=seed, index=item * views + v, options=options)
                for v in range(views)]
    row = np.concatenate([annotated(e) for e in examples], axis=1)
    rows.append(np.concatenate([caption(examples[0], row.shape[1]), row], axis=0))
  return np.concatenate(rows, axis=0)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default="synthetic.png")
  parser.add_argument("--items", type=int, default=6)
  parser.add_argument("--views", type=int, default=3, help="views per item (1 shop, rest street)")
  parser.add_argument("--size", type=int, default=192)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  image = picture(args.items, args.size, args.views, args.seed)
  visualize.save_png(args.out, image)
  print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]}): filled dots visible keypoints, "
        "hollow dots occluded ones, blue the bbox, yellow the visible-garment mask")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
