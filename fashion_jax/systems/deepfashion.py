"""Loss terms, predictions and DeepFashion scoring shared by the multi-task systems
(landmarks + category + attributes): the landmark-driven attention network and the two-stream
network. A system's loss is a weighted sum of these terms, weights from `config.loss`.

Output names a multi-task module returns:
  landmark_heatmaps [B, H, W, 8] or stacked [S, B, H, W, 8] (any H, W: the stride is input size
    / map size),
  category_logits [B, C], attribute_logits [B, A].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fashion_jax import baselines, losses, metrics, reporting
from fashion_jax.data import schema, transforms
from fashion_jax.ops import heatmaps


def landmark_heatmap_loss(outputs: dict, batch: dict, loss_cfg) -> jax.Array:
  """The landmark-attention paper's L2 loss, (1/N) sum (M - M')^2 over every map element.

  N counts all elements of the 8 maps of every example (the paper's "total number of array
  elements", as in its public code's `.mean()`); the maps of landmarks that are not VISIBLE are
  masked to zero error (no gradient) but still counted in N. Targets: Gaussians of
  `loss_cfg.heatmap_sigma_input_px` network-input pixels at the visible landmarks. Stacked maps
  [S, B, H, W, 8] (a stacked hourglass) are each compared with the targets and summed.
  """
  maps = outputs["landmark_heatmaps"]
  visible = batch["landmarks_visibility"] == schema.VISIBLE
  stride = losses.heatmap_stride(batch["image"].shape[1:3], maps.shape[-3:-1])
  targets = losses.heatmap_targets(points=batch["landmarks"], mask=visible,
                                   map_hw=maps.shape[-3:-1], stride=stride,
                                   sigma_input_px=loss_cfg.heatmap_sigma_input_px)
  per_stack = losses.heatmap_squared_error(predictions=maps, targets=targets,
                                           example_mask=batch["valid"], channel_mask=visible,
                                           normalize="per_element")
  return jnp.sum(per_stack)  # stacked outputs: intermediate supervision, summed over stacks


def category_loss(outputs: dict, batch: dict, loss_cfg) -> jax.Array:
  del loss_cfg
  return losses.softmax_cross_entropy(logits=outputs["category_logits"],
                                      labels=batch["category"],
                                      example_mask=batch["valid"] & (batch["category"] >= 0))


def attribute_loss(outputs: dict, batch: dict, loss_cfg) -> jax.Array:
  """Class-weighted binary cross-entropy over the attributes; unknown labels (-1) are masked.

  `loss_cfg.attribute_class_weights` = (negative, positive) and `attribute_normalize` ("count"
  or "weight"): see `losses.sigmoid_cross_entropy`.
  """
  known = (batch["attributes"] >= 0) & batch["valid"][:, None]
  negative, positive = loss_cfg.attribute_class_weights
  return losses.sigmoid_cross_entropy(logits=outputs["attribute_logits"],
                                      labels=batch["attributes"], label_mask=known,
                                      positive_weight=positive, negative_weight=negative,
                                      normalize=loss_cfg.attribute_normalize)


TERMS = {"landmarks": landmark_heatmap_loss, "category": category_loss,
         "attributes": attribute_loss}


def loss(outputs: dict, batch: dict, loss_cfg) -> tuple[jax.Array, dict[str, jax.Array]]:
  """sum_t weight_t * term_t over the terms with a non-zero weight in `loss_cfg.weights`."""
  terms = {name: fn(outputs, batch, loss_cfg) for name, fn in TERMS.items()
           if loss_cfg.weights[name]}
  total = sum(loss_cfg.weights[name] * value for name, value in terms.items())
  return total, terms


BATCH_FIELDS = ("image", "landmarks", "landmarks_visibility", "category", "attributes",
                "valid")
LABELS = ("landmarks", "bbox", "category", "attributes")  # bbox: the NE protocol's crop


def predict(outputs: dict, batch: dict) -> dict[str, jax.Array]:
  """Landmarks [B, 8, 2] in network-input pixels (argmax with the quarter-pixel shift),
  category and attribute scores."""
  maps = outputs["landmark_heatmaps"]
  maps = maps[-1] if maps.ndim == 5 else maps  # stacked: the last stack is the output
  points, scores = heatmaps.argmax_decode(maps)
  return {"landmarks": heatmaps.map_to_input(points, batch["image"].shape[1] / maps.shape[1]),
          "landmark_scores": scores,
          "category_scores": jax.nn.softmax(outputs["category_logits"].astype(jnp.float32)),
          "attribute_scores": jax.nn.sigmoid(outputs["attribute_logits"].astype(jnp.float32))}


def score(predictions: dict, batch: dict, spec: schema.DatasetSpec) -> dict:
  """DeepFashion protocols: landmark NE in the ground-truth crop, category top-k accuracy,
  attribute top-k recall per group (the spec's groups) and overall."""
  valid = batch["valid"] & batch["original_has_bbox"]
  points = transforms.to_original(predictions["landmarks"], batch["transform"])
  return {
      "landmarks": metrics.deepfashion_landmark_error(
          predictions=points, landmarks=batch["original_landmarks"],
          visibility=batch["original_landmarks_visibility"], bbox=batch["original_bbox"],
          valid=valid),
      "category": metrics.top_k_accuracy(scores=predictions["category_scores"],
                                         labels=batch["category"], valid=batch["valid"]),
      "attributes": metrics.attribute_recall_at_k(
          scores=predictions["attribute_scores"], labels=batch["attributes"],
          groups=spec.attribute_groups, group_names=spec.attribute_group_names,
          valid=batch["valid"]),
  }


def mean_baseline(truth: dict, spec: schema.DatasetSpec) -> dict[str, np.ndarray]:
  """The "training mean" predictor: mean visible landmark positions (network-input frame),
  category frequencies and attribute positive rates of the training examples in `truth`."""
  return {"landmarks": baselines.mean_points(truth["landmarks"], truth["landmarks_visibility"],
                                             truth["valid"]),
          "category_scores": baselines.class_frequencies(truth["category"], truth["valid"],
                                                         spec.num_categories),
          "attribute_scores": baselines.positive_rates(truth["attributes"], truth["valid"])}



# --- the paper's table ------------------------------------------------------------------
_SLOT_COLUMNS = ("L.Collar", "R.Collar", "L.Sleeve", "R.Sleeve", "L.Waistline", "R.Waistline",
                 "L.Hem", "R.Hem")
ATTRIBUTE_GROUPS = ("texture", "fabric", "shape", "part", "style")


def deepfashion_landmark_table(results: dict[str, dict]) -> str:
  """Table 1 of the landmark-attention paper: NE per landmark slot and the average.

  Args:
    results: method name -> the dict of `metrics.deepfashion_landmark_error`.
  """
  rows = {m: [*r["per_slot"].values(), r["mean"]] for m, r in results.items()}
  return ("DeepFashion landmark normalised error (lower is better)\n"
          + reporting.format_table([*_SLOT_COLUMNS, "Avg"], rows))


def deepfashion_classification_table(categories: dict[str, dict],
                                     attributes: dict[str, dict]) -> str:
  """Table 2 of the landmark-attention paper: category top-3/5 accuracy and attribute top-3/5
  recall per group and overall, in percent.

  Args:
    categories: method -> `metrics.top_k_accuracy` dict; attributes: method ->
      `metrics.attribute_recall_at_k` dict (groups missing from a dataset show as "-").
  """
  groups = ("Category", *(g.capitalize() for g in ATTRIBUTE_GROUPS), "All")
  columns = [f"{g} top-{k}" for g in groups for k in (3, 5)]
  rows = {}
  for method in categories:
    attr = attributes[method]
    values = [100 * categories[method]["top3"], 100 * categories[method]["top5"]]
    for group in (*ATTRIBUTE_GROUPS, "all"):
      cell = attr.get(group, {})
      values += [100 * cell.get("top3", float("nan")), 100 * cell.get("top5", float("nan"))]
    rows[method] = values
  return ("DeepFashion category accuracy and attribute recall, % (higher is better)\n"
          + reporting.format_table(columns, rows, fmt="{:.2f}"))


def report(results_by_method: dict[str, dict]) -> str:
  """Tables 1 and 2 of the landmark-attention paper, one row per method."""
  return (deepfashion_landmark_table(
      {m: r["landmarks"] for m, r in results_by_method.items()}) + "\n\n"
      + deepfashion_classification_table(
          {m: r["category"] for m, r in results_by_method.items()},
          {m: r["attributes"] for m, r in results_by_method.items()}))
