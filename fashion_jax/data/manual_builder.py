"""The TFDS plumbing shared by the manual-download builders of the real datasets.

A builder only describes its format: `read_annotations(manual_dir)` parses the annotation files
into a `Plan` (one column-wise `SplitTable` per split plus the `DatasetSpec`). This module then
checks every image before anything is written (missing image: stop; undecodable image: skip and
count; odd mode: re-encode and count), stores the spec in the TFDS metadata and yields examples of
the shared schema. The records keep the order of the annotation files (`disable_shuffling`), so a
record index is stable across preparations.
"""

from __future__ import annotations

import abc
import concurrent.futures
import dataclasses
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from fashion_jax.data import formats, schema


@dataclasses.dataclass
class SplitTable:
  """The annotations of one split, column-wise.

  image_ids: [N] the dataset's own image names (also the TFDS keys).
  image_paths: [N] files to read.
  fields: schema field name -> [N, ...] array; fields not given keep `schema.empty_example`.
  reencode: [N] bool, images to hand to TFDS as an RGB JPEG re-encoding.
  unlabelled: label kinds the dataset has but this split lacks (a test CSV without keypoints);
    recorded in the spec so that such a split is never scored on them.
  """

  image_ids: list[str]
  image_paths: list[Path]
  fields: dict[str, np.ndarray]
  reencode: np.ndarray | None = None
  unlabelled: tuple[str, ...] = ()
  mask_paths: list[Path] | None = None  # one mask per image, when masks were given

  def __post_init__(self):
    if self.reencode is None:
      self.reencode = np.zeros(len(self.image_ids), bool)
    for name, values in self.fields.items():
      if len(values) != len(self.image_ids):
        raise ValueError(f"field {name} has {len(values)} rows for {len(self.image_ids)} images")

  def __len__(self) -> int:
    return len(self.image_ids)

  def example(self, index: int, num_attributes: int) -> dict:
    """The annotations of record `index` in the shared schema (image and mask not included)."""
    example = schema.empty_example(num_attributes)
    example.update({name: values[index] for name, values in self.fields.items()})
    return example

  def select(self, keep: np.ndarray) -> SplitTable:
    keep = np.asarray(keep, bool)
    return SplitTable(
        image_ids=[n for n, k in zip(self.image_ids, keep, strict=True) if k],
        image_paths=[p for p, k in zip(self.image_paths, keep, strict=True) if k],
        fields={name: values[keep] for name, values in self.fields.items()},
        reencode=self.reencode[keep], unlabelled=self.unlabelled,
        mask_paths=None if self.mask_paths is None else [
            p for p, k in zip(self.mask_paths, keep, strict=True) if k])


def empty_fields(num_examples: int, num_attributes: int, names: Iterable[str]) -> dict:
  """Column arrays for `names`, every row initialised to the schema's 'missing' value."""
  empty = schema.empty_example(num_attributes)
  return {name: np.repeat(np.asarray(empty[name])[None], num_examples, axis=0) for name in names}


@dataclasses.dataclass
class Skipped:
  split: str
  image_id: str
  reason: str


@dataclasses.dataclass
class Plan:
  """What a preparation will write: the spec, the splits, and what was skipped or noticed."""

  spec: schema.DatasetSpec
  splits: dict[str, SplitTable]
  notes: list[str] = dataclasses.field(default_factory=list)
  skipped: list[Skipped] = dataclasses.field(default_factory=list)

  @property
  def num_reencoded(self) -> int:
    return int(sum(table.reencode.sum() for table in self.splits.values()))


Progress = Callable[..., Iterable]  # tqdm-like: progress(iterable, total=..., desc=...)


def _no_progress(iterable, **unused_kwargs):
  return iterable


# How far annotations may reach outside their image, as a fraction of its width and height: a
# box a little past the border (rounding, a garment cut by the frame) and points of truncated
# landmarks are kept; a value beyond is an annotation error.
BOX_SLACK, POINT_SLACK = 0.1, 1.0


def geometry_problems(table: SplitTable, index: int, size: tuple[int, int]) -> list[str]:
  """What is wrong with record `index`'s box and points in an image of `size` (width,
  height): a box or a labelled point too far outside the image."""
  w, h = size
  problems = []

  def inside(x, y, slack):
    return -slack * w <= x <= (1 + slack) * w and -slack * h <= y <= (1 + slack) * h

  fields = table.fields
  if "has_bbox" in fields and fields["has_bbox"][index]:
    x1, y1, x2, y2 = (float(v) for v in fields["bbox"][index])
    if not (inside(x1, y1, BOX_SLACK) and inside(x2, y2, BOX_SLACK)):
      problems.append(f"bbox {[x1, y1, x2, y2]} lies outside the {w}x{h} image")
  for name in ("landmarks", "keypoints"):
    if name not in fields:
      continue
    labelled = fields[f"{name}_visibility"][index] != schema.ABSENT
    far = [i for i in np.flatnonzero(labelled)
           if not inside(*(float(v) for v in fields[name][index][i]), POINT_SLACK)]
    if far:
      i = far[0]
      problems.append(f"{len(far)} {name} far outside the {w}x{h} image (slot {i} at "
                      f"{fields[name][index][i].tolist()})")
  return problems


def check_inside(plan: Plan, root: Path) -> None:
  """Refuses image ids that lead out of the dataset folder (`../`, absolute paths)."""
  top = os.path.normpath(os.path.abspath(root))
  for name, table in plan.splits.items():
    for image_id, path in zip(table.image_ids, table.image_paths, strict=True):
      if not os.path.normpath(os.path.abspath(path)).startswith(top + os.sep):
        raise formats.AnnotationError(root, None, f"split {name!r}: image id {image_id!r} "
                                      f"leads outside {root}")


def validate_images(plan: Plan, progress: Progress | None = None,
                    workers: int | None = None) -> Plan:
  """Checks every image of `plan`; returns the plan without corrupt images, re-encodes flagged.

  Raises:
    FileNotFoundError: some listed images do not exist (nothing is written in that case).
  """
  progress = progress or _no_progress
  for name, table in plan.splits.items():
    missing = formats.missing_images(table.image_paths)
    if missing:
      shown = "\n  ".join(str(p) for p in missing[:10])
      raise FileNotFoundError(
          f"{len(missing)} image(s) of split {name!r} listed in the annotations do not exist "
          f"(is the manual directory complete?):\n  {shown}")
  splits, skipped, notes = {}, list(plan.skipped), list(plan.notes)
  workers = workers or min(8, os.cpu_count() or 1)
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:  # Pillow decodes without the GIL
    for name, table in plan.splits.items():
      checks = list(progress(pool.map(formats.check_image, table.image_paths), total=len(table),
                             desc=f"checking {name} images"))
      corrupt = np.array([c.status == formats.IMAGE_CORRUPT for c in checks], bool)
      skipped += [Skipped(name, table.image_ids[i], checks[i].reason)
                  for i in np.flatnonzero(corrupt)]
      reencode = table.reencode | np.array(
          [c.status == formats.IMAGE_REENCODE for c in checks], bool)
      bad = [f"{name} {table.image_ids[i]}: {problem}"
             for i, c in enumerate(checks) if c.size
             for problem in geometry_problems(table, i, c.size)]
      if bad:
        raise formats.AnnotationError(
            table.image_paths[0].parent, None, f"{len(bad)} record(s) with annotations outside "
            "their image (nothing was written):\n  " + "\n  ".join(bad[:10]))
      kept = dataclasses.replace(table, reencode=reencode).select(~corrupt)
      if len(kept):
        splits[name] = kept
      elif len(table):
        notes.append(f"split {name!r} is left out: none of its {len(table)} images decodes")
  return Plan(spec=plan.spec, splits=splits, notes=notes, skipped=skipped)


def attach_masks(plan: Plan, masks_dir: Path, progress: Progress | None = None) -> Plan:
  """The plan with every image's mask from `masks_dir`, each checked (readable, the image's
  size); the spec then records masks. A missing or bad mask stops the preparation."""
  progress = progress or _no_progress
  missing, bad, empty, splits = [], [], [], {}
  for name, table in plan.splits.items():
    paths = [formats.mask_path(masks_dir, i) for i in table.image_ids]
    missing += [p for p in paths if not p.is_file()]
    for path, image in progress(list(zip(paths, table.image_paths, strict=True)),
                                desc=f"checking {name} masks"):
      why = formats.check_mask(path, image) if path.is_file() else None
      if why:
        bad.append(f"{path}: {why}")
      elif path.is_file() and formats.mask_is_empty(path):
        empty.append(f"{name}/{path.name}")
    splits[name] = dataclasses.replace(table, mask_paths=paths)
  if missing:
    shown = "\n  ".join(str(p) for p in missing[:10])
    raise FileNotFoundError(f"{len(missing)} image(s) have no mask in {masks_dir} (expected "
                            f"<image path>.png):\n  {shown}")
  if bad:
    raise formats.AnnotationError(masks_dir, None, f"{len(bad)} bad mask(s):\n  " +
                                  "\n  ".join(bad[:10]))
  labels = tuple(dict.fromkeys((*plan.spec.labels, "mask"))) if plan.spec.labels else ()
  notes = [*plan.notes, f"masks read from {masks_dir}"]
  if empty:  # stored (a segmenter may find no one), but said: their segmented image is blank
    notes.append(f"{len(empty)} mask(s) are all zero (nothing segmented), so their segmented "
                 f"image is blank: {', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}")
  return Plan(spec=dataclasses.replace(plan.spec, labels=labels), splits=splits,
              notes=notes, skipped=plan.skipped)


# Builder configs of datasets whose attribute count comes from the files (an exported synthetic
# set, a user's shop/street CSV) are named `<base>_<N>attr`.
_COUNTED_CONFIG = re.compile(r"^(?P<base>[a-z]+)_(?P<count>\d+)attr$")


def counted_config_name(base: str, num_attributes: int) -> str:
  return f"{base}_{num_attributes}attr"


def parse_counted_config_name(name: str) -> tuple[str, int] | None:
  match = _COUNTED_CONFIG.match(name)
  return (match["base"], int(match["count"])) if match else None


def find_layout_root(manual_dir: Path, markers: tuple[str, ...]) -> tuple[Path, str | None]:
  """The folder holding a dataset's layout: `manual_dir`, or its only sub-folder when the archive
  was unpacked with its top folder (e.g. `ClothingAttributeDataset/`).

  Args:
    markers: paths relative to the layout root, any of which identifies it.

  Returns:
    (root, a note saying which top folder was entered, or None).
  """
  if any((manual_dir / m).exists() for m in markers):
    return manual_dir, None
  folders = [p for p in manual_dir.iterdir() if p.is_dir()
             and not p.name.startswith((".", "_"))] if manual_dir.is_dir() else []
  if len(folders) == 1 and any((folders[0] / m).exists() for m in markers):
    return folders[0], f"read from the archive's top folder {folders[0].name}/"
  return manual_dir, None  # the reader reports what is missing


class ManualBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the real-dataset builders (subclasses live in their own package folders)."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "First release.",
                   "1.1.0": "The published 'val' split is stored as 'validation'; the spec "
                            "records which labels the dataset and each split have."}
  HOMEPAGE = None
  # Paths relative to the layout root, any of which identifies it (see `find_layout_root`).
  LAYOUT_MARKERS: tuple[str, ...] = ()

  def __init__(self, *, config=None, **kwargs):
    if isinstance(config, str) and config not in self.builder_configs:
      config = self.config_from_name(config)
    super().__init__(config=config, **kwargs)
    self._plan_cache: tuple[Path, Plan] | None = None

  @classmethod
  def config_from_name(cls, name: str):
    """A builder config for a name not in BUILDER_CONFIGS (default: left to TFDS to refuse)."""
    return name

  @classmethod
  def config_for_manual_dir(cls, manual_dir, requested: str | None):
    """The config `prepare` uses for `manual_dir` when the user asked for `requested`."""
    del manual_dir
    return requested

  @classmethod
  def layout_root(cls, manual_dir) -> tuple[Path, str | None]:
    """See `find_layout_root`."""
    return find_layout_root(Path(os.fspath(manual_dir)).expanduser(), cls.LAYOUT_MARKERS)

  @property
  def num_attributes(self) -> int:
    return getattr(self.builder_config, "num_attributes", 0)

  def static_spec(self) -> schema.DatasetSpec | None:
    """The spec when it does not depend on the files (then it is known before preparation)."""
    return None

  @abc.abstractmethod
  def read_annotations(self, manual_dir: Path) -> Plan:
    """Parses and cross-checks the annotation files; raises AnnotationError on bad input."""

  def _info(self) -> tfds.core.DatasetInfo:
    spec = self.static_spec()
    metadata = tfds.core.MetadataDict(dataset_spec=spec.to_json()) if spec is not None else (
        tfds.core.MetadataDict())
    return self.dataset_info_from_configs(
        features=schema.features(self.num_attributes), metadata=metadata,
        disable_shuffling=True, homepage=self.HOMEPAGE)

  def prepare_plan(self, manual_dir, progress: Progress | None = None,
                   workers: int | None = None, masks_dir=None) -> Plan:
    """Reads the annotations and checks every image (and mask, when `masks_dir` is given: one
    per image, see `formats.mask_path`); cached so `prepare` validates only once."""
    manual_dir = Path(os.fspath(manual_dir)).resolve()
    if self._plan_cache is None or self._plan_cache[0] != manual_dir:
      root, note = self.layout_root(manual_dir)
      plan = self.read_annotations(root)
      check_inside(plan, root)
      plan = validate_images(plan, progress, workers)
      if note:
        plan.notes.insert(0, note)
      if masks_dir is not None:
        plan = attach_masks(plan, Path(os.fspath(masks_dir)).expanduser(), progress)
      self._plan_cache = (manual_dir, plan)
    return self._plan_cache[1]

  def _split_generators(self, dl_manager):
    plan = self.prepare_plan(dl_manager.manual_dir)
    splits = {schema.canonical_split(name): table for name, table in plan.splits.items()}
    spec = dataclasses.replace(plan.spec, unlabelled=tuple(
        (name, table.unlabelled) for name, table in splits.items() if table.unlabelled))
    # Saved with dataset_info.json after generation; read back by `datasets.dataset_spec`.
    self.info.metadata["dataset_spec"] = spec.to_json()
    return {name: self._generate_examples(table) for name, table in splits.items()}

  def _generate_examples(self, table: SplitTable):
    mask = formats.empty_mask_png()
    for index in range(len(table)):
      example = table.example(index, self.num_attributes)
      example["image"] = formats.image_bytes(table.image_paths[index], table.reencode[index])
      example["image_id"] = table.image_ids[index]
      if table.mask_paths is None:
        example["mask"] = mask  # no mask given: has_mask stays False
      else:
        example["mask"], example["has_mask"] = formats.mask_png(table.mask_paths[index]), True
      yield table.image_ids[index], example
