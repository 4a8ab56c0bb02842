"""Fashion Pose Machine (Hu et al., SPIE 10836, 2018): a convolutional pose machine for the 24
FashionAI keypoints.

Architecture (paper section 2; the layer sizes it leaves open follow the convolutional pose
machine of Wei et al. 2016 that it builds on, as in CPM's released model):
  * stage 1: image features by five convolutions (9x9x128 + pool, 9x9x128 + pool, 9x9x128 +
    pool, 5x5x32, 9x9x512) and two 1x1 convolutions (512, L+1) -> belief maps c_1 at 1/8 of the
    input (512 -> 64);
  * stages t >= 2: image features x'. As in CPM, the three 9x9x128 convolutions (with their
    pools) are one sub-network computed once and shared by every stage t >= 2 (the paper: "we
    share the weights of corresponding convolutional layers across stages"), and each stage has
    its own 5x5x32 convolution on top of it. Its output is concatenated with c_{t-1}; three
    11x11x128 convolutions (a large receptive field on the 8x-downscaled maps) and two 1x1
    convolutions (128, L+1) give c_t;
  * L keypoints + 1 background channel; ReLU after every convolution but the last of a stage.
Loss (eq. 4-5): for every stage, the squared error between belief maps and Gaussian-peak targets
summed over pixels and all L+1 channels; summed over stages (intermediate supervision), averaged
over the batch. Keypoints are decoded from the last stage's maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fashion_jax import baselines, losses, metrics, reporting
from fashion_jax.data import image_conventions, schema, transforms
from fashion_jax.models import layers
from fashion_jax.ops import heatmaps, pooling
from fashion_jax.systems.base import System


class ConvStack(nn.Module):
  """Convolutions with ReLU, each optionally followed by a 3x3 stride-2 max pool.

  `relu_last=False` leaves the last convolution linear (a belief-map output).
  """

  features: Sequence[int]
  kernels: Sequence[int]
  pool_after: Sequence[bool] = ()
  relu_last: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    pools = tuple(self.pool_after) + (False,) * (len(self.features) - len(self.pool_after))
    for i, (feat, k, pool) in enumerate(zip(self.features, self.kernels, pools, strict=True)):
      x = layers.Conv(feat, (k, k), padding="SAME", dtype=self.dtype, name=f"conv{i + 1}")(x)
      if self.relu_last or i < len(self.features) - 1:
        x = nn.relu(x)
      if pool:
        x = pooling.max_pool(x, (3, 3), (2, 2), "SAME")
    return x


class FashionPoseMachine(nn.Module):
  """Multi-stage pose machine. `__call__(batch, train)` reads `batch["image"]` [B, H, W, 3]
  uint8 and returns `{"belief_maps": [T, B, H/8, W/8, L+1] float32}`, stages first."""

  num_keypoints: int = len(schema.KEYPOINT_NAMES)
  num_stages: int = 6
  feature_widths: Sequence[int] = (128, 128, 128, 32)  # conv1-4 of x and x'; pools after 1-3
  feature_kernels: Sequence[int] = (9, 9, 9, 5)
  stage1_widths: Sequence[int] = (512, 512)  # conv5 (9x9), then the first 1x1 convolution
  stage1_kernels: Sequence[int] = (9, 1)
  refine_width: int = 128
  refine_kernel: int = 11
  refine_depth: int = 3  # large-kernel convolutions per stage t >= 2
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, batch, train: bool = False):
    del train  # no batch norm or dropout in the pose machine
    image = image_conventions.normalize(batch["image"], self.dtype)
    channels = self.num_keypoints + 1
    pools = (True,) * (len(self.feature_widths) - 1)
    x = ConvStack(self.feature_widths, self.feature_kernels, pool_after=pools, dtype=self.dtype,
                  name="stage1_features")(image)
    belief = ConvStack((*self.stage1_widths, channels), (*self.stage1_kernels, 1),
                       relu_last=False, dtype=self.dtype, name="stage1_head")(x)
    stages = [belief]
    if self.num_stages > 1:  # x': the pooled trunk, computed once for every stage t >= 2
      shared = ConvStack(self.feature_widths[:-1], self.feature_kernels[:-1], pool_after=pools,
                         dtype=self.dtype, name="shared_features")(image)
    for t in range(2, self.num_stages + 1):
      own = ConvStack(self.feature_widths[-1:], self.feature_kernels[-1:], dtype=self.dtype,
                      name=f"stage{t}_features")(shared)
      widths = (self.refine_width,) * (self.refine_depth + 1) + (channels,)
      kernels = (self.refine_kernel,) * self.refine_depth + (1, 1)
      belief = ConvStack(widths, kernels, relu_last=False, dtype=self.dtype,
                         name=f"stage{t}")(jnp.concatenate([own, belief], axis=-1))
      stages.append(belief)
    return {"belief_maps": jnp.stack(stages).astype(jnp.float32)}


def make_module(model_cfg, spec: schema.DatasetSpec) -> FashionPoseMachine:
  del spec  # the 24 FashionAI keypoints are fixed by the schema
  return FashionPoseMachine(
      num_stages=model_cfg.num_stages, feature_widths=tuple(model_cfg.feature_widths),
      feature_kernels=tuple(model_cfg.feature_kernels),
      stage1_widths=tuple(model_cfg.stage1_widths),
      stage1_kernels=tuple(model_cfg.stage1_kernels), refine_width=model_cfg.refine_width,
      refine_kernel=model_cfg.refine_kernel, refine_depth=model_cfg.refine_depth,
      dtype=jnp.dtype(model_cfg.dtype))


def _stride(outputs, batch) -> float:
  return losses.heatmap_stride(batch["image"].shape[1:3], outputs["belief_maps"].shape[2:4])


def loss(outputs: dict, batch: dict, loss_cfg) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Stage-wise L2 to Gaussian-peak targets (with background), summed over stages.

  Every annotated keypoint (visible or occluded: FashionAI gives coordinates for both) gets a
  peak of `loss_cfg.heatmap_sigma_input_px` input pixels; absent ones an empty map.
  """
  maps = outputs["belief_maps"]  # [T, B, h, w, L+1]
  targets = losses.heatmap_targets(
      points=batch["keypoints"], mask=batch["keypoints_visibility"] != schema.ABSENT,
      map_hw=maps.shape[2:4], stride=_stride(outputs, batch),
      sigma_input_px=loss_cfg.heatmap_sigma_input_px, background=True)
  per_stage = losses.heatmap_squared_error(predictions=maps, targets=targets,
                                           example_mask=batch["valid"], normalize="per_example")
  terms = {f"stage{t + 1}": per_stage[t] for t in range(maps.shape[0])}
  return jnp.sum(per_stage), terms


def predict(outputs: dict, batch: dict) -> dict[str, jax.Array]:
  """Keypoints [B, 24, 2] in network-input pixels from the last stage's maps, and every
  stage's own decoding, `stage_keypoints` [B, T, 24, 2] (intermediate supervision trains each
  stage to predict, so each can be scored)."""
  maps = outputs["belief_maps"][..., :-1]  # [T, B, h, w, 24]: the background channel dropped
  points, scores = heatmaps.argmax_decode(maps)  # [T, B, 24, 2], [T, B, 24]
  points = heatmaps.map_to_input(points, _stride(outputs, batch))
  return {"keypoints": points[-1], "keypoint_scores": scores[-1],
          "stage_keypoints": jnp.moveaxis(points, 0, 1)}


def _normalized_error(points_input: np.ndarray, batch: dict) -> dict:
  """FashionAI challenge NE of keypoints [N, 24, 2] given in network-input pixels."""
  return metrics.fashionai_normalized_error(
      predictions=transforms.to_original(points_input, batch["transform"]),
      keypoints=batch["original_keypoints"], visibility=batch["original_keypoints_visibility"],
      category=batch["fashionai_category"], valid=batch["valid"])


def score(predictions: dict, batch: dict, spec: schema.DatasetSpec) -> dict:
  """In the original image frame (the last stage): `paper_ne`, the paper's NE (distances in
  coordinates divided by the image's width and height), and `fashionai_ne`, the FashionAI
  challenge NE (divided by the armpit or waistband distance); and the challenge NE of every
  stage's own keypoints, `fashionai_ne_by_stage/stage<t>` (predictors with stages)."""
  del spec
  out = {"paper_ne": metrics.normalized_coordinate_error(
             predictions=transforms.to_original(predictions["keypoints"], batch["transform"]),
             keypoints=batch["original_keypoints"],
             visibility=batch["original_keypoints_visibility"],
             image_size=batch["original_image_size"], valid=batch["valid"]),
         "fashionai_ne": _normalized_error(predictions["keypoints"], batch)}
  if "stage_keypoints" in predictions:
    stages = np.asarray(predictions["stage_keypoints"])
    out["fashionai_ne_by_stage"] = {
        f"stage{t + 1}": _normalized_error(stages[:, t], batch)["mean"]
        for t in range(stages.shape[1])}
  return out



# --- the paper's table ------------------------------------------------------------------

def fashionai_table(results: dict[str, dict],
                    title: str = "FashionAI normalised error") -> str:
  """Table 1 of the Fashion Pose Machine paper (NE per keypoint pair and mean), two halves.

  Args:
    results: method name -> the dict of `metrics.fashionai_normalized_error` or
      `metrics.normalized_coordinate_error`.
  """
  cols = [name for name, _ in metrics.FASHIONAI_TABLE_COLUMNS]
  first, second = cols[:7], cols[7:]
  top = reporting.format_table(first, {m: [r["per_column"][c] for c in first]
                                       for m, r in results.items()})
  bottom = reporting.format_table(second + ["Ave"], {
      m: [*(r["per_column"][c] for c in second), r["mean"]] for m, r in results.items()})
  text = f"{title} (lower is better)\n{top}\n\n{bottom}"
  if all("num_skipped_images" in r for r in results.values()):
    skipped = ", ".join(f"{m}: {r['num_skipped_images']}/{r['num_images']}"
                        for m, r in results.items())
    text += f"\nimages skipped (normaliser undefined): {skipped}"
  return text


def report(results_by_method: dict[str, dict]) -> str:
  """Paper Table 1 with one row per method (trained model, baselines): the paper's NE, then the
  FashionAI challenge NE in the same layout."""
  paper = {m: r["paper_ne"] for m, r in results_by_method.items() if "paper_ne" in r}
  challenge = {m: r["fashionai_ne"] for m, r in results_by_method.items()}
  tables = [fashionai_table(
      paper, "The paper's NE: distance in coordinates divided by the image's width and height")
  ] if paper else []
  tables.append(fashionai_table(
      challenge, "FashionAI challenge NE: distance divided by the armpit or waistband distance"))
  return "\n\n".join(tables)


def mean_baseline(truth: dict, spec: schema.DatasetSpec) -> dict[str, np.ndarray]:
  """The "training mean" predictor: every keypoint at its mean annotated training position."""
  del spec
  return {"keypoints": baselines.mean_points(truth["keypoints"], truth["keypoints_visibility"],
                                             truth["valid"])}


SYSTEM = System(
    name="fpm", make_module=make_module,
    batch_fields=("image", "keypoints", "keypoints_visibility", "valid"), labels=("keypoints",),
    loss=loss, predict=predict, score=score, report=report,
    best_metric=("fashionai_ne/mean", "min"), mean_baseline=mean_baseline)
