r"""Person masks for a dataset without them (the Clothing Attributes Dataset), from the FCN
segmenter: run once, then prepare the dataset with `--masks`.

  python -m tools.convert_weights --backbone fcn_resnet50 --input fcn_resnet50_coco.pth \
      --output weights/fcn_resnet50.safetensors
  python -m tools.segment --root=DIR --images='images/*.jpg' \
      --weights=weights/fcn_resnet50.safetensors --out=MASKS
  python -m fashion_jax.data.prepare --dataset=clothing_attributes --manual_dir=DIR --masks=MASKS

Each image is resized so that its shorter side is `--size` pixels (torchvision's segmentation
preset uses 520) and its longer side a multiple of 64 (so that few shapes are compiled),
ImageNet-normalised, segmented, and the pixels whose most likely VOC label is
`person` become the mask, resized back to the image (nearest); `MASKS/<relative path>.png` holds
255 on the person and 0 elsewhere, the layout `prepare --masks` reads. Existing masks are kept
(rerunning resumes); an unreadable image is reported and skipped.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import cv2
from tqdm import tqdm

from fashion_jax.models import backbones, weights
from fashion_jax.segmenter import network_size as network_size  # re-exported
from fashion_jax.segmenter import person_mask_of


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", required=True, help="folder the image paths are relative to")
  parser.add_argument("--images", required=True, help="glob of images, relative to --root")
  parser.add_argument("--weights", required=True, help="converted fcn_resnet50/101 weights")
  parser.add_argument("--backbone", default="fcn_resnet50", choices=["fcn_resnet50",
                                                                      "fcn_resnet101"])
  parser.add_argument("--out", required=True, help="folder of the masks to write")
  parser.add_argument("--size", type=int, default=520, help="shorter side fed to the network")
  args = parser.parse_args(argv)
  paths = sorted(glob.glob(os.path.join(args.root, args.images)))
  if not paths:
    print(f"error: no file matches {args.images!r} under {args.root}", file=sys.stderr)
    return 1
  try:
    variables = weights.load_variables(args.weights)
  except (OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  model = backbones.get(args.backbone).build(num_classes=21)
  failed = []
  for path in tqdm(paths, desc="segmenting"):
    relative = os.path.relpath(path, args.root)
    target = os.path.join(args.out, os.path.splitext(relative)[0] + ".png")
    if os.path.exists(target):
      continue
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
      failed.append(relative)
      continue
    mask = person_mask_of(model, variables, cv2.cvtColor(image, cv2.COLOR_BGR2RGB), args.size)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not cv2.imwrite(target + ".tmp.png", mask):
      print(f"error: cannot write {target}", file=sys.stderr)
      return 1
    os.replace(target + ".tmp.png", target)  # a mask on disk is always complete
  print(f"{len(paths) - len(failed)} masks in {args.out}")
  if failed:
    print(f"{len(failed)} unreadable image(s) skipped: {', '.join(failed[:20])}",
          file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
