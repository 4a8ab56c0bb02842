"""Writes the synthetic dataset in the on-disk format of a real dataset.

  python -m tools.export_synth --format=deepfashion_attributes --out=/tmp/df_synth --n=200
  python -m fashion_jax.data.prepare --dataset=deepfashion_attributes --manual_dir=/tmp/df_synth \
      --data_dir=/tmp/tfds

Formats and the builder that reads each: deepfashion_attributes -> deepfashion_attributes
(config coarse_<N>attr, chosen by prepare), deepfashion_landmarks -> deepfashion_landmarks,
fashionai -> fashionai_keypoints, dcsa -> clothing_attributes, shop_street -> shop_street.
"""

from __future__ import annotations

import argparse
import sys

from fashion_jax.data import export

READER = {"deepfashion_attributes": "deepfashion_attributes",
          "deepfashion_landmarks": "deepfashion_landmarks", "fashionai": "fashionai_keypoints",
          "dcsa": "clothing_attributes", "shop_street": "shop_street"}


def synth_examples(n: int, seed: int, image_size: int, views_per_item: int):
  """Renders `n` synthetic examples (view 0 of an item is shop, the others street)."""
  from fashion_jax.data.synth import SynthOptions, render_example

  options = SynthOptions(image_size=image_size, views_per_item=views_per_item)
  for index in range(n):
    yield render_example(seed=seed, index=index, options=options)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--format", required=True, choices=export.FORMATS)
  parser.add_argument("--out", required=True, help="directory to write (the manual_dir)")
  parser.add_argument("--n", type=int, default=100, help="number of images")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--image_size", type=int, default=256)
  parser.add_argument("--views_per_item", type=int, default=2)
  args = parser.parse_args(argv)
  from fashion_jax.data.synth import SYNTH_SPEC

  examples = synth_examples(args.n, args.seed, args.image_size, args.views_per_item)
  counts = export.export(examples, SYNTH_SPEC, args.format, args.out)
  print(f"wrote {', '.join(f'{k}: {v}' for k, v in counts.items())} to {args.out}")
  print(f"next: python -m fashion_jax.data.prepare --dataset={READER[args.format]} "
        f"--manual_dir={args.out} --data_dir=DIR")
  return 0


if __name__ == "__main__":
  sys.exit(main())
