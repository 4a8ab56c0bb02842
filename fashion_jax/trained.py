"""A trained run's model, rebuilt from its workdir alone: `fashion_jax.load(workdir)`.

The workdir's config.json and stored dataset spec give the module; its variables come from the
best checkpoint, else (none, or it does not restore) the latest train state, and `checkpoint`
says which (`"best (step 120)"`). They are restored into a template made with `jax.eval_shape`,
so nothing is initialised or compiled just to be overwritten. One compiled function predicts:
batches are padded to `batch_size`, so any number of images uses the same program.

    model = fashion_jax.load("workdirs/fpm")
    results = model.predict(["a.jpg", image_array], boxes=None)
    results[0]["keypoints"]["neckline_left"]  # (x, y, confidence, visible), original pixels

`fashion_jax.export` writes the same function as serialised StableHLO; `fashion_jax.serving`
runs that with jax, numpy and Pillow alone, and gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from fashion_jax import checkpoints, inference, sharding, state, systems
from fashion_jax import workdir as workdir_files
from fashion_jax.data import formats, schema

IMAGE_FIELDS = ("image", "segmented_image")  # the inputs a caller gives; the rest are constants


def names_for(system, spec: schema.DatasetSpec) -> inference.Names:
  return inference.Names(
      keypoints=schema.KEYPOINT_NAMES, landmarks=schema.LANDMARK_NAMES,
      categories=tuple(spec.category_names), attributes=tuple(spec.attribute_names),
      attribute_groups=tuple(int(g) for g in spec.attribute_groups),
      attribute_group_names=tuple(spec.attribute_group_names),
      dcsa_binary=schema.DCSA_BINARY_LABELS, dcsa_multiclass=dict(schema.DCSA_MULTICLASS_LABELS),
      grouped_attributes=system.grouped_attributes)


def restore_variables(workdir: str, system, template, latest=None) -> tuple[dict, int, str]:
  """(variables, step, which): the best checkpoint's variables, else the latest train state's
  (`checkpoints.Checkpointer.best_else_latest`; `which` names the case). `template`: the
  variables' structure and shardings (abstract arrays will do). `latest`: (variables, step)
  of the latest state when the caller holds it (training), else it is read from disk: the
  newest train state that restores (an unreadable one is skipped with a warning, and left
  where it is)."""
  ckpt = checkpoints.Checkpointer(workdir, *system.best_metric)
  try:
    return ckpt.best_else_latest(
        template, (lambda: latest) if latest is not None else
        (lambda: _newest_readable_variables(ckpt, template)))
  finally:
    ckpt.close()


def _newest_readable_variables(ckpt, template) -> tuple[dict, int] | None:
  import orbax.checkpoint as ocp

  for step in sorted(ckpt.latest.all_steps(), reverse=True):
    try:
      restored = ckpt.latest.restore(step, args=ocp.args.StandardRestore())
    except Exception as e:  # noqa: BLE001 - orbax raises several kinds for damaged files
      logging.warning("the checkpoint of step %d in %s does not restore (%s); trying the one "
                      "before", step, ckpt.latest.directory, checkpoints.short_reason(e))
      continue
    return {k: restored[k] for k in template if k in restored}, step
  if ckpt.latest.all_steps():
    raise checkpoints.CheckpointError(
        f"no checkpoint in {ckpt.latest.directory} restores (steps "
        f"{sorted(ckpt.latest.all_steps())}), and the best one is missing or unreadable")
  return None


@dataclasses.dataclass
class Forward:
  """The network from input images to raw predictions: `fn(variables, inputs)` with inputs
  {"image": [B, H, W, 3] uint8 (and "segmented_image")}; every other field the module reads is
  a constant of the blank example, broadcast to the batch (so the function has no other input
  and exports as it is)."""

  fn: object
  input_fields: tuple[str, ...]

  @classmethod
  def build(cls, system, module, blank: dict) -> Forward:
    inputs = tuple(f for f in IMAGE_FIELDS if f in system.batch_fields)
    constants = {k: np.asarray(blank[k]) for k in system.batch_fields
                 if k not in inputs and k in blank}
    constants["valid"] = np.bool_(True)

    def fn(variables, batch_inputs):
      size = batch_inputs["image"].shape[0]
      batch = {k: jnp.broadcast_to(v, (size, *v.shape)) for k, v in constants.items()}
      batch.update(batch_inputs)
      return system.predict(module.apply(variables, batch, train=False), batch)

    return cls(fn, inputs)


class TrainedModel:
  """See the module docstring. Attributes: config, spec, system, checkpoint (label), step."""

  def __init__(self, workdir: str, batch_size: int = 8, segmenter: str | None = None, *,
               config=None, spec=None, mesh=None, latest=None):
    """`config`, `spec`: the run's config and dataset spec when the caller holds them (else
    the workdir's config.json and dataset_spec.json are read); `mesh`: replicate the
    variables over it (default: the first device); `latest`: (variables, step) of the latest
    state when the caller holds it (`restore_variables`)."""
    if not os.path.isdir(workdir):
      raise FileNotFoundError(f"{workdir}: no such workdir")
    self.workdir = workdir
    self.config = config or workdir_files.load_config(workdir)
    self.spec = spec or workdir_files.load_dataset_spec(workdir)
    self.system = systems.get_system(self.config.system)
    self.module = self.system.make_module(self.config.model, self.spec)
    self.preprocess = inference.Preprocess.from_data_config(self.config.data)
    self.names = names_for(self.system, self.spec)
    self.batch_size = int(batch_size)
    blank = self.system.batch_source.blank_example(self.config.data, self.spec)
    template = jax.eval_shape(lambda: state.init_variables(
        self.module, self.system.batch_fields, blank, 0))
    placement = (jax.sharding.SingleDeviceSharding(jax.devices()[0]) if mesh is None
                 else sharding.replicated(mesh))
    template = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=placement), template)
    self.variables, self.step, self.which = restore_variables(workdir, self.system, template,
                                                              latest)
    kind = "best" if self.which == checkpoints.BEST else "latest"
    self.checkpoint = f"{kind} (step {self.step})"
    self.forward = Forward.build(self.system, self.module, blank)
    self._compiled = jax.jit(self.forward.fn)
    self.segmenter = None
    if segmenter:  # person masks for a segmented stream, made from each photo
      from fashion_jax.segmenter import PersonSegmenter

      self.segmenter = PersonSegmenter(segmenter)

  def raw(self, inputs: dict) -> dict:
    """Raw predictions (network-input frame, numpy) of one padded batch of inputs."""
    return jax.tree.map(np.asarray, self._compiled(self.variables, inputs))

  def predict(self, images, boxes=None, masks=None, *, top_k: int = inference.TOP_K,
              visible_threshold: float = inference.VISIBLE_THRESHOLD,
              boundary_map: bool = False, max_pixels: int = formats.DEFAULT_MAX_PIXELS) -> list:
    """One result per image (see `inference.named`) in the original image's pixels.

    images: uint8 RGB arrays ([H, W, 3]; grey and RGBA are converted) or file paths; boxes:
    optional (x1, y1, x2, y2) garment boxes in pixels per image (None entries: whole image),
    used by the models that crop to the garment; masks: person masks [H, W] per image, needed
    by the models that read a segmented image (SisterNetwork); made from each photo by the
    FCN segmenter when the model was loaded with its weights (`segmenter=`) and none are given.
    """
    if self.segmenter is not None and masks is None and self.preprocess.segmented:
      images = inference.load_images(images, max_pixels)
      masks = [self.segmenter(image) for image in images]
    return inference.predict(self.raw, self.preprocess, self.names, self.forward.input_fields,
                             self.batch_size, images, boxes, masks, top_k=top_k,
                             visible_threshold=visible_threshold, boundary_map=boundary_map,
                             max_pixels=max_pixels)

  def metadata(self) -> dict:
    """What an export records beside the function (model.json)."""
    return {"system": self.config.system, "preprocess": dataclasses.asdict(self.preprocess),
            "names": dataclasses.asdict(self.names), "input_fields": list(
                self.forward.input_fields), "normalisation": "ImageNet mean/std, inside the "
            "function (inputs are uint8 RGB)", "source_workdir": os.path.abspath(self.workdir),
            "checkpoint": self.checkpoint, "step": self.step, "config": json.loads(
                self.config.to_json())}
