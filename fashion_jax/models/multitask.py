"""Loss terms, predictions and DeepFashion scoring shared by the multi-task systems
(landmarks + category + attributes): the landmark-driven attention network and the two-stream
network. A system's loss is a weighted sum of these terms, weights from `config.loss`.

Output names a multi-task module returns:
  landmark_heatmaps [B, H, W, 8] (any H, W: the stride is input size / map size),
  category_logits [B, C], attribute_logits [B, A].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fashion_jax import losses, metrics, reporting
from fashion_jax.data import schema, transforms
from fashion_jax.ops import heatmaps


def landmark_heatmap_loss(outputs: dict, batch: dict, loss_cfg) -> jax.Array:
  """Mean squared error to Gaussian targets over the elements of VISIBLE landmarks' maps.

  Maps of occluded, truncated or absent landmarks are masked out (no loss, no gradient); the
  mean is over the counted elements (the paper's 1/N with N the number of map elements).
  """
  maps = outputs["landmark_heatmaps"]
  stride = batch["image"].shape[1] / maps.shape[1]
  visible = batch["landmarks_visibility"] == schema.VISIBLE
  targets = heatmaps.gaussian_heatmaps(heatmaps.input_to_map(batch["landmarks"], stride),
                                       visible, maps.shape[1], maps.shape[2],
                                       loss_cfg.heatmap_sigma / stride)
  mask = (visible & batch["valid"][:, None]).astype(jnp.float32)[:, None, None, :]
  squared = jnp.square(maps.astype(jnp.float32) - targets) * mask
  return jnp.sum(squared) / jnp.maximum(jnp.sum(mask) * maps.shape[1] * maps.shape[2], 1.0)


def category_loss(outputs: dict, batch: dict, loss_cfg) -> jax.Array:
  del loss_cfg
  return losses.softmax_cross_entropy(logits=outputs["category_logits"],
                                      labels=batch["category"],
                                      example_mask=batch["valid"] & (batch["category"] >= 0))


def attribute_loss(outputs: dict, batch: dict, loss_cfg) -> jax.Array:
  """Binary cross-entropy over the attributes; unknown labels (-1) are masked out."""
  known = (batch["attributes"] >= 0) & batch["valid"][:, None]
  return losses.sigmoid_cross_entropy(logits=outputs["attribute_logits"],
                                      labels=batch["attributes"], label_mask=known,
                                      positive_weight=loss_cfg.attribute_positive_weight)


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


def predict(outputs: dict, batch: dict) -> dict[str, jax.Array]:
  """Landmarks [B, 8, 2] in network-input pixels (argmax with the quarter-pixel shift),
  category and attribute scores."""
  maps = outputs["landmark_heatmaps"]
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


def report(results_by_method: dict[str, dict]) -> str:
  """Tables 1 and 2 of the landmark-attention paper, one row per method."""
  return (reporting.deepfashion_landmark_table(
      {m: r["landmarks"] for m, r in results_by_method.items()}) + "\n\n"
      + reporting.deepfashion_classification_table(
          {m: r["category"] for m, r in results_by_method.items()},
          {m: r["attributes"] for m, r in results_by_method.items()}))
