"""Two-stream multi-task network (Li, Li, Jiang and Zhen, "Two-Stream Multi-Task Network for
Fashion Recognition", ICIP 2019): landmarks, category and attributes of DeepFashion.

Both streams read the same ground-truth bbox crop; landmarks live in that crop's normalised frame
(u = (x + 0.5) / W), which is the same for both.
  * landmark stream (`landmark_stream`): a 4-stack hourglass with bottleneck residual blocks on
    the 256x256 crop, 8 heatmaps per stack at 64x64, every stack supervised (section 3.1);
  * classification stream (`classification_stream`): ResNet-50 on the crop resized to 224x224
    (on device), its classifier replaced by two linear heads on the pooled features: category
    (softmax) and attributes (sigmoid) (section 4.2);
  * boundary awareness (section 3.2, Algorithm 1), inside the compiled step: landmarks decoded
    from the last stack's heatmaps (argmax with the quarter-pixel shift), the confident ones
    (peak >= `boundary_min_score`; with fewer than `boundary_min_points` of them the map is all
    ones, i.e. no information) joined into their hull, filled and blurred by
    `fashion_jax.ops.boundary.boundary_attention` at the resolution of the ResNet features it
    modulates (`boundary_at`), with `stop_gradient` (the paper's map is a rasterisation and
    carries no gradient). `boundary_formula`: "residual" F' = F * (1 + A) (the default: a
    garment-shaped emphasis that keeps the background's features, so a wrong map cannot erase
    the image) or "multiply" F' = F * A (the background removed). `boundary_source` switches
    the landmarks: "predicted" (the paper), "ground_truth" (visible or occluded annotated
    landmarks; an upper bound, or a training phase) or "none" (no boundary awareness);
  * structure awareness (section 3.3): the landmark stream's end feature maps (the last stack's
    features before its heatmap convolution, 64x64x256) resized to the ResNet features after
    `structure_at` (stage2: 28x28x512, the "middle-level" features), concatenated with them and
    brought back to their channel count by a 1x1 convolution + batch norm + ReLU
    (`structure_restore`), so the pretrained stages after it read what they expect
    (`structure_fusion="conv"`). The paper calls its sharing parameter-free; "add" is our
    parameter-free reading: the resized landmark features, repeated along channels to the ResNet
    features' count (256 -> 512 at paper size), are added to them, F' = F + [S; S]. One way
    only: nothing of the classification stream enters the landmark stream. The classification
    loss's gradient does reach the landmark stream through the shared features (the streams
    co-adapt) unless `structure_gradient` is False (a stop_gradient: the landmark stream is
    then trained by its own loss only).
The paper leaves open where the attention applies and how, and where the structure features
join; the defaults are written in configs/two_stream.py and are config values.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fashion_jax import reporting, visualize
from fashion_jax.data import image_conventions, schema
from fashion_jax.models import hourglass, layers, resnet
from fashion_jax.ops import boundary, heatmaps
from fashion_jax.systems import deepfashion
from fashion_jax.systems.base import System

BOUNDARY_SOURCES = ("predicted", "ground_truth", "none")
BOUNDARY_FORMULAS = ("residual", "multiply")
STRUCTURE_FUSIONS = ("conv", "add")
RESNET_STAGES = ("stem", "stage1", "stage2", "stage3", "stage4")


def decoded_landmarks(maps: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Landmarks of [B, h, w, L] heatmaps in the normalised crop frame, and their peak values."""
  points, scores = heatmaps.argmax_decode(maps)
  size = jnp.asarray([maps.shape[-2], maps.shape[-3]], jnp.float32)  # (w, h)
  return (points + 0.5) / size, scores


def boundary_landmarks(source: str, outputs_heatmaps: jax.Array, batch: dict, *,
                       min_score: float, min_points: int) -> tuple[jax.Array, jax.Array]:
  """(landmarks [B, L, 2] normalised, which count [B, L]) for the boundary map; rows with fewer
  than `min_points` counted landmarks are marked by an all-False row (the map is then ones)."""
  if source == "predicted":
    points, scores = decoded_landmarks(outputs_heatmaps)
    valid = scores >= min_score
  else:
    size = jnp.asarray(batch["image"].shape[2:0:-1], jnp.float32)  # (W, H)
    points = (batch["landmarks"] + 0.5) / size
    valid = batch["landmarks_visibility"] != schema.ABSENT
  enough = jnp.sum(valid, axis=-1) >= min_points
  return jax.lax.stop_gradient(points), valid & enough[:, None]


def boundary_map(points: jax.Array, valid: jax.Array, hw: tuple[int, int],
                 sigma: float) -> jax.Array:
  """[B, h, w] attention; all ones where a row has no counted landmark."""
  attention = boundary.boundary_attention(points, valid, height=hw[0], width=hw[1], sigma=sigma,
                                          normalized=True)
  return jnp.where(jnp.any(valid, axis=-1)[:, None, None], attention, 1.0)


class TwoStreamNet(nn.Module):
  """`__call__(batch, train)` reads `batch["image"]` [B, H, W, 3] uint8 (the bbox crop at the
  landmark stream's size) and, for `boundary_source="ground_truth"`, `landmarks` and their
  visibility. Returns `landmark_heatmaps` [S, B, H/4, W/4, 8] (every stack), `category_logits`
  [B, C], `attribute_logits` [B, A] and `boundary_attention` [B, h, w] (the map applied, ones
  when none is)."""

  num_categories: int
  num_attributes: int
  num_landmarks: int = len(schema.LANDMARK_NAMES)
  stacks: int = 4
  hourglass_depth: int = 4
  hourglass_features: int = 256
  heatmap_init_std: float | None = 0.001
  resnet_stage_sizes: Sequence[int] = (3, 4, 6, 3)  # ResNet-50
  resnet_width: int = 64
  classification_size: int = 224
  boundary_source: str = "predicted"
  boundary_at: str = "stage1"
  boundary_formula: str = "residual"
  boundary_sigma: float = 1.5  # in pixels of the modulated features
  boundary_min_score: float = 0.3
  boundary_min_points: int = 3
  structure_at: str = "stage2"  # "": no structure awareness
  structure_gradient: bool = True  # False: the shared features carry no gradient back
  structure_fusion: str = "conv"  # "add": parameter-free, F + the features repeated
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, batch, train: bool = False):
    image = image_conventions.normalize(batch["image"], self.dtype)
    landmark = hourglass.StackedHourglass(
        self.num_landmarks, num_stacks=self.stacks, depth=self.hourglass_depth,
        features=self.hourglass_features, heatmap_init_std=self.heatmap_init_std,
        dtype=self.dtype, name="landmark_stream")(image, train)
    stack = landmark["heatmaps"].astype(jnp.float32)  # [S, B, h, w, L]
    size = (self.classification_size, self.classification_size)
    x = jax.image.resize(image, (image.shape[0], *size, 3), "linear") if (
        image.shape[1:3] != size) else image
    backbone = resnet.ResNet(stage_sizes=tuple(self.resnet_stage_sizes), num_classes=None,
                             width=self.resnet_width, dtype=self.dtype,
                             name="classification_stream")
    attention = jnp.ones(x.shape[:1] + (1, 1), jnp.float32)
    previous = None
    for stage in RESNET_STAGES:
      x = backbone(x, train, start_after=previous, stop_at=stage)[stage]
      previous = stage
      if stage == self.boundary_at and self.boundary_source != "none":
        points, valid = boundary_landmarks(
            self.boundary_source, stack[-1], batch, min_score=self.boundary_min_score,
            min_points=self.boundary_min_points)
        attention = boundary_map(points, valid, x.shape[1:3], self.boundary_sigma)
        a = attention[..., None].astype(x.dtype)
        x = x * (1 + a) if self.boundary_formula == "residual" else x * a
      if stage == self.structure_at:
        x = self._structure(x, landmark[f"stack{self.stacks}"], train)
    pooled = backbone(x, train, start_after=previous)["pooled"]
    dense = lambda n, name: nn.Dense(n, dtype=self.dtype, name=name)(pooled).astype(jnp.float32)
    return {"landmark_heatmaps": stack, "boundary_attention": attention,
            "category_logits": dense(self.num_categories, "category_head"),
            "attribute_logits": dense(self.num_attributes, "attribute_head")}

  def _structure(self, x, landmark_features, train):
    """Concatenates the landmark stream's end features, resized to x, then restores x's
    channels."""
    shape = (x.shape[0], *x.shape[1:3], landmark_features.shape[-1])
    if not self.structure_gradient:
      landmark_features = jax.lax.stop_gradient(landmark_features)
    shared = jax.image.resize(landmark_features.astype(x.dtype), shape, "linear")
    if self.structure_fusion == "add":
      if x.shape[-1] % shared.shape[-1]:
        raise ValueError(f"structure_fusion='add' repeats the landmark stream's "
                         f"{shared.shape[-1]} channels to the ResNet's {x.shape[-1]}: the "
                         "second must be a multiple of the first")
      return x + jnp.tile(shared, (1, 1, 1, x.shape[-1] // shared.shape[-1]))
    y = layers.conv(self.dtype)(x.shape[-1], (1, 1), name="structure_restore")(
        jnp.concatenate([x, shared], axis=-1))
    return nn.relu(layers.batch_norm(train, self.dtype)(name="structure_restore_bn")(y))


def make_module(model_cfg, spec: schema.DatasetSpec) -> TwoStreamNet:
  if not spec.num_categories or not spec.num_attributes:
    raise ValueError("the two-stream network needs a dataset with categories and attributes; "
                     f"this one has {spec.num_categories} and {spec.num_attributes}")
  for field, value, allowed in (("boundary_source", model_cfg.boundary_source, BOUNDARY_SOURCES),
                                ("boundary_formula", model_cfg.boundary_formula,
                                 BOUNDARY_FORMULAS),
                                ("boundary_at", model_cfg.boundary_at, RESNET_STAGES),
                                ("structure_at", model_cfg.structure_at, ("", *RESNET_STAGES)),
                                ("structure_fusion", model_cfg.get("structure_fusion", "conv"),
                                 STRUCTURE_FUSIONS)):
    if value not in allowed:
      raise ValueError(f"config.model.{field} = {value!r}; use one of {allowed}")
  return TwoStreamNet(
      num_categories=spec.num_categories, num_attributes=spec.num_attributes,
      stacks=model_cfg.stacks, hourglass_depth=model_cfg.hourglass_depth,
      hourglass_features=model_cfg.hourglass_features,
      heatmap_init_std=model_cfg.get("heatmap_init_std", None),
      resnet_stage_sizes=tuple(model_cfg.resnet_stage_sizes), resnet_width=model_cfg.resnet_width,
      classification_size=model_cfg.classification_size,
      boundary_source=model_cfg.boundary_source, boundary_at=model_cfg.boundary_at,
      boundary_formula=model_cfg.boundary_formula, boundary_sigma=model_cfg.boundary_sigma,
      boundary_min_score=model_cfg.boundary_min_score,
      boundary_min_points=model_cfg.boundary_min_points, structure_at=model_cfg.structure_at,
      structure_gradient=bool(model_cfg.get("structure_gradient", True)),
      structure_fusion=model_cfg.get("structure_fusion", "conv"),
      dtype=jnp.dtype(model_cfg.dtype))


PICTURE_MAP_SIZE = 28  # the attention map kept for pictures: small enough for 40k test images


def predict(outputs: dict, batch: dict) -> dict[str, jax.Array]:
  """The multi-task predictions (from the last stack) and the boundary attention map, resized to
  at most 28x28 and stored as uint8 (0..255) to keep a whole test set's maps small."""
  attention = outputs["boundary_attention"]
  side = min(PICTURE_MAP_SIZE, attention.shape[-1])
  small = jax.image.resize(attention, (attention.shape[0], side, side), "linear")
  return {**deepfashion.predict(outputs, batch),
          "boundary_attention": jnp.round(jnp.clip(small, 0, 1) * 255).astype(jnp.uint8)}


def picture(batch: dict, predictions: dict, n: int = 8) -> np.ndarray | None:
  """Like the paper's Fig. 3: per image, the crop with ground-truth and predicted landmarks,
  then the boundary attention map laid over the crop."""
  panels = []
  scale = max(1, 256 // batch["image"].shape[1])
  for i in np.flatnonzero(batch["valid"])[:n]:
    image = batch["image"][i]
    panels.append(visualize.draw_points(image, batch["landmarks"][i],
                                        batch["landmarks_visibility"][i],
                                        predictions["landmarks"][i], scale))
    attention = np.asarray(predictions["boundary_attention"][i], np.float32) / 255
    panels.append(visualize.overlay_map(image, attention, scale))
  return visualize.grid(panels, columns=4) if panels else None



# --- the paper's table ------------------------------------------------------------------

def two_stream_table(results: dict[str, dict]) -> str:
  """Table 1 of the two-stream paper: landmark NE, category top-3/5 accuracy and attribute
  top-3/5 recall over all attributes (%, NE as a fraction).

  Args:
    results: method -> the multi-task metrics dict (`landmarks`, `category`, `attributes`).
  """
  rows = {m: [r["landmarks"]["mean"], 100 * r["category"]["top3"], 100 * r["category"]["top5"],
              100 * r["attributes"]["all"]["top3"], 100 * r["attributes"]["all"]["top5"]]
          for m, r in results.items()}
  table = reporting.format_table(
      ["Landmarks NE", "Category top-3", "top-5", "Attribute top-3", "top-5"], rows)
  return "DeepFashion-C: landmarks (NE, lower is better), category and attributes (%)\n" + table


def report(results_by_method: dict[str, dict]) -> str:
  """Table 1 of the two-stream paper, then the per-slot and per-group tables."""

  return (two_stream_table(results_by_method) + "\n\n"
          + deepfashion.report(results_by_method))


SYSTEM = System(
    name="two_stream", make_module=make_module,
    batch_fields=deepfashion.BATCH_FIELDS, labels=deepfashion.LABELS, loss=deepfashion.loss,
    predict=predict, score=deepfashion.score, report=report,
    best_metric=("category/top3", "max"), mean_baseline=deepfashion.mean_baseline, picture=picture)
