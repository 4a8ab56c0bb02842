"""Converts a torchvision/timm state dict into Flax variables for a fashion_jax backbone.

  python -m tools.convert_weights --backbone resnet50 \
      --input resnet50.safetensors --output weights/resnet50_flax.safetensors

The input is a `.safetensors` state dict (no torch needed) or a `.pth` one (needs torch; read with
`weights_only=True`). The output is what `config.model.pretrained` points at. See
docs/pretrained.md for how to obtain the weights.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax

from fashion_jax.models import backbones


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--backbone", required=True, choices=sorted(backbones.BACKBONES))
  parser.add_argument("--input", required=True, help=".safetensors or .pth torch state dict")
  parser.add_argument("--output", required=True, help="converted .safetensors to write")
  parser.add_argument("--num-classes", type=int, default=-1,
                      help="classifier size in the state dict; 0 if it has no classifier; "
                      "default: the published weights' (1000, or 21 for the fcn_* segmenters)")
  args = parser.parse_args(argv)
  if not args.output.endswith(".safetensors"):
    parser.error(f"--output must end in .safetensors, got {args.output}")
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  try:
    num_classes = {-1: backbones.DEFAULT, 0: None}.get(args.num_classes, args.num_classes)
    variables = backbones.convert_file(args.backbone, args.input, args.output,
                                       num_classes=num_classes)
  except (OSError, ValueError, ImportError) as e:  # WeightImportError lists every bad key
    print(f"error: {e}", file=sys.stderr)
    return 1
  for collection, tree in variables.items():
    leaves = jax.tree.leaves(tree)
    print(f"{collection}: {len(leaves)} arrays, {sum(leaf.size for leaf in leaves):,} values")
  print(f"wrote {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
