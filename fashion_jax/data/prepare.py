"""Prepares a manual-download dataset: validate everything first, then write the TFDS files.

  python -m fashion_jax.data.prepare --dataset=deepfashion_attributes --manual_dir=DIR \
      --data_dir=~/tensorflow_datasets [--config=coarse]

Every annotation file is parsed and cross-checked and every image is decoded before anything is
written; malformed input stops the command with a message naming the file and line. Images that
cannot be decoded (corrupt, truncated) are skipped and listed in the summary; see
docs/datasets.md for the full policy.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
from pathlib import Path

from fashion_jax.data import datasets

MAX_LISTED = 20  # skipped images named per reason in the printed summary


@dataclasses.dataclass
class Summary:
  dataset: str
  config: str | None
  data_path: str
  examples: dict[str, int]
  skipped: list  # manual_builder.Skipped
  num_reencoded: int
  notes: list[str]
  num_categories: int
  num_attributes: int
  already_prepared: bool = False


def prepare(dataset: str, manual_dir, data_dir=None, config: str | None = None,
            overwrite: bool = False, workers: int | None = None, progress=None,
            masks_dir=None) -> Summary:
  """Validates `manual_dir` and writes the dataset; returns what was written and skipped.

  Raises:
    formats.AnnotationError, FileNotFoundError: bad input (nothing has been written).
    ValueError: an unknown dataset or config.
  """
  import tensorflow_datasets as tfds

  manual_dir = Path(manual_dir).expanduser()
  if not manual_dir.is_dir():
    raise FileNotFoundError(f"manual directory not found: {manual_dir}")
  builder_cls = datasets.builder_class(dataset)
  if hasattr(builder_cls, "config_for_manual_dir"):
    root, _ = builder_cls.layout_root(manual_dir)  # the archive's top folder, if unpacked with it
    config = builder_cls.config_for_manual_dir(root, config)
  builder = datasets.get_builder(dataset, data_dir=data_dir, config=config)
  if not hasattr(builder, "prepare_plan"):
    raise ValueError(f"{dataset!r} is not a manual-download dataset: it is generated on first use")
  config_name = builder.builder_config.name if builder.builder_config else None
  if datasets.prepared(builder) and not overwrite:
    spec = datasets.dataset_spec(builder)
    return Summary(dataset, config_name, str(builder.data_path),
                   {name: info.num_examples for name, info in builder.info.splits.items()},
                   [], 0, ["already prepared; pass --overwrite to prepare again"],
                   spec.num_categories, spec.num_attributes, already_prepared=True)
  plan = builder.prepare_plan(manual_dir, progress=progress, workers=workers,
                              masks_dir=masks_dir)
  mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
          else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  had_data = datasets.prepared(builder)
  try:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(manual_dir), download_mode=mode))
  except OSError as e:  # a full disk, a read-only folder: the write failed part way
    removed = _remove_incomplete(Path(builder.data_path).parent)
    kept = ("the data prepared there before is kept" if datasets.prepared(builder) else
            "nothing usable was written" if not had_data else "the earlier data is gone")
    raise PrepareError(
        f"writing {dataset} to {Path(builder.data_path).parent} failed: "
        f"{e.strerror or type(e).__name__}{f' ({e.filename})' if e.filename else ''}; {kept}"
        + (f"; {removed} incomplete folder(s) removed" if removed else "")
        + ". Free space or choose another --data_dir, then run the same command again.") from e
  return Summary(
      dataset=dataset, config=config_name, data_path=str(builder.data_path),
      examples={name: info.num_examples for name, info in builder.info.splits.items()},
      skipped=plan.skipped, num_reencoded=plan.num_reencoded, notes=plan.notes,
      num_categories=plan.spec.num_categories, num_attributes=plan.spec.num_attributes)


class PrepareError(OSError):
  """Writing the prepared files failed (disk full, read-only folder); the message says what
  is kept."""


def _remove_incomplete(folder: Path) -> int:
  """Removes the temporary folders tfds leaves after a failed write; returns how many."""
  import shutil

  found = [p for p in folder.glob("incomplete.*") if p.is_dir()] if folder.is_dir() else []
  for path in found:
    shutil.rmtree(path, ignore_errors=True)
  return len(found)


def format_summary(summary: Summary) -> str:
  config = f" (config {summary.config})" if summary.config else ""
  lines = [f"{summary.dataset}{config} -> {summary.data_path}"]
  for split, count in summary.examples.items():
    lines.append(f"  {split}: {count} examples")
  lines.append(f"  categories: {summary.num_categories}, attributes: {summary.num_attributes}")
  by_reason = collections.defaultdict(list)
  for item in summary.skipped:
    by_reason[item.reason].append(f"{item.split}/{item.image_id}")
  lines.append(f"  skipped: {len(summary.skipped)}")
  for reason, names in by_reason.items():
    more = f" (+{len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    lines.append(f"    {len(names)} x {reason}: {', '.join(names[:MAX_LISTED])}{more}")
  lines.append(f"  re-encoded as RGB JPEG: {summary.num_reencoded}")
  lines += [f"  note: {note}" for note in summary.notes]
  if summary.config:
    lines.append(f"  read it with datasets.get_builder({summary.dataset!r}, "
                 f"config={summary.config!r})")
  return "\n".join(lines)


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog="python -m fashion_jax.data.prepare", description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", required=True, choices=sorted(datasets.BUILDERS))
  parser.add_argument("--manual_dir", required=True, help="where the archives were unpacked")
  parser.add_argument("--data_dir", default=datasets.default_data_dir(),
                      help="TFDS data directory to write to")
  parser.add_argument("--config", default=None,
                      help="builder config (default: chosen from the manual directory)")
  parser.add_argument("--overwrite", action="store_true", help="prepare again if present")
  parser.add_argument("--workers", type=int, default=None, help="image-checking threads")
  parser.add_argument("--masks", default=None,
                      help="folder of one mask per image (<image path>.png, non-zero = garment "
                      "or person), e.g. from tools/segment.py; stored with the images")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  from tqdm import tqdm

  args = parse_args(sys.argv[1:] if argv is None else argv)
  try:
    summary = prepare(args.dataset, args.manual_dir, args.data_dir, config=args.config,
                      overwrite=args.overwrite, workers=args.workers, progress=tqdm,
                      masks_dir=args.masks)
  except (ValueError, FileNotFoundError) as e:  # AnnotationError is a ValueError
    print(f"error: {e}\nnothing was written.", file=sys.stderr)
    return 1
  except PrepareError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(format_summary(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
