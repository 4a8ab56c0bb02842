"""Multi-task curriculum transfer (Dong, Gong and Zhu, BMVC 2017 poster): single-label clothing
attribute groups of street images, learned from shop images first.

The multi-task network (MTN): the poster's NIN trunk (fashion_jax/models/nin.py) on the image,
its pool5 output flattened, then one branch per attribute group: FC-1024 + ReLU, FC-1024 + ReLU,
FC-N_group, softmax. The loss is the sum of the groups' cross-entropies over the images where a
group is labelled.

Two sets of branches share the trunk: `shop_branches` (f_s, the source network of the poster's
stage 1) and `street_branches` (f_t, the target network). `model.branches` says which set the
classification loss trains and the predictions use; stage 2 of the curriculum starts
`street_branches` as a copy of the trained shop ones (the phase's `copy`), and its triplet term
compares street anchors through f_t with shop positives and negatives through f_s. With the
trunk frozen in stage 2 (configs/mtct.py), f_s is exactly the stage-1 network, as the poster's
t-STE term reads once its garbled denominator is set right (f_s for positive and negative).
The embedding a triplet compares is the concatenation over groups of each branch's second
FC-1024 (the features its classifier reads), L2-normalised, so squared distances are in [0, 4]
and the Student-t kernel neither saturates nor vanishes.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fashion_jax import baselines, losses, metrics, reporting
from fashion_jax.data import batch_sources, image_conventions, schema
from fashion_jax.models import layers, nin
from fashion_jax.systems.base import System

BRANCH_SETS = ("shop", "street")
TRIPLET_LOSSES = ("tste", "margin")


class Branches(nn.Module):
  """One FC-1024 / FC-1024 / FC-N branch per group: features [B, F] -> (per-group logits,
  the concatenated second FC layers [B, G * width])."""

  group_sizes: Sequence[int]
  width: int = 1024
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features):
    logits, hidden = [], []
    for g, size in enumerate(self.group_sizes):
      h = nn.relu(nn.Dense(self.width, dtype=self.dtype, name=f"group{g}_fc1")(features))
      h = nn.relu(nn.Dense(self.width, dtype=self.dtype, name=f"group{g}_fc2")(h))
      hidden.append(h)
      logits.append(nn.Dense(size, dtype=self.dtype, name=f"group{g}_out")(h).astype(
          jnp.float32))
    return tuple(logits), jnp.concatenate(hidden, axis=-1)


def embed(hidden: jax.Array) -> jax.Array:
  hidden = hidden.astype(jnp.float32)
  return hidden / jnp.maximum(jnp.linalg.norm(hidden, axis=-1, keepdims=True), 1e-6)


class MultiTaskNetwork(nn.Module):
  """`__call__(batch, train)` reads `image` [B, H, W, 3] uint8 and, in triplet batches,
  `positive/image` and `negative/image`. Returns `group_logits` (one [B, N_g] per group, from
  `branches`), and with triplets `anchor_embedding` (street set on the image),
  `positive_embedding`, `negative_embedding` (shop set) and `positive_group_logits` (shop set
  on the positive image)."""

  group_sizes: Sequence[int]
  fc_width: int = 1024
  branches: str = "street"
  width_scale: float = 1.0
  batch_norm: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, batch, train: bool = False):
    roles = ["image"] + [f"{r}/image" for r in ("positive", "negative") if f"{r}/image" in batch]
    images = jnp.concatenate([batch[r] for r in roles])  # one trunk pass for all roles
    x = nin.NIN(batch_norm=self.batch_norm, width_scale=self.width_scale, dtype=self.dtype,
                name="trunk")(image_conventions.normalize(images, self.dtype), train)["pool5"]
    features = jnp.split(layers.flatten_channels_first(x), len(roles))
    sets = {name: Branches(self.group_sizes, self.fc_width, self.dtype, name=f"{name}_branches")
            for name in BRANCH_SETS}
    logits, hidden = sets[self.branches](features[0])
    other = sets["street" if self.branches == "shop" else "shop"]
    if self.is_initializing():
      other(features[0])  # both sets exist from the start (stage 2 copies one into the other)
    out = {"group_logits": logits}
    if len(roles) == 3:
      street_anchor = sets["street"](features[0])[1]
      (positive_logits, positive), (_, negative) = (sets["shop"](f) for f in features[1:])
      out.update(anchor_embedding=embed(street_anchor), positive_embedding=embed(positive),
                 negative_embedding=embed(negative), positive_group_logits=positive_logits)
    return out


def check_groups(spec: schema.DatasetSpec) -> tuple[int, ...]:
  """Classes per group; the attributes of a group must be adjacent, groups in order."""
  groups = np.asarray(spec.attribute_groups)
  if not len(groups) or np.any(np.diff(groups) < 0) or np.any(np.diff(groups) > 1):
    raise ValueError("the multi-task network needs single-label attribute groups whose "
                     "attributes are adjacent and in group order (order the CSV's columns by "
                     f"group); this dataset's groups are {spec.attribute_group_names}")
  return tuple(int(n) for n in np.bincount(groups))


def make_module(model_cfg, spec: schema.DatasetSpec) -> MultiTaskNetwork:
  if model_cfg.branches not in BRANCH_SETS:
    raise ValueError(f"config.model.branches = {model_cfg.branches!r}; use {BRANCH_SETS}")
  return MultiTaskNetwork(group_sizes=check_groups(spec), fc_width=model_cfg.fc_width,
                          branches=model_cfg.branches, width_scale=model_cfg.width_scale,
                          batch_norm=model_cfg.batch_norm, dtype=jnp.dtype(model_cfg.dtype))


def group_cross_entropy(group_logits, attributes: jax.Array, valid: jax.Array) -> jax.Array:
  """Sum over groups of the cross-entropy over the images where the group is labelled."""
  total, start = 0.0, 0
  for logits in group_logits:
    block = attributes[:, start:start + logits.shape[-1]]
    start += logits.shape[-1]
    labelled = jnp.any(block == 1, axis=-1) & valid
    total += losses.softmax_cross_entropy(logits=logits, labels=jnp.argmax(block == 1, axis=-1),
                                          example_mask=labelled)
  return total


def loss(outputs: dict, batch: dict, loss_cfg) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Classification (the sum of the groups' cross-entropies), plus, in triplet batches, the
  shop positives' classification when `loss_cfg.classify_partners`, and
  `loss_cfg.triplet_weight` times the t-STE (alpha `loss_cfg.alpha`) or margin triplet loss,
  summed over the batch's triplets (`loss_cfg.triplet_reduction = "sum"`, the poster's
  formula) or averaged ("mean")."""
  terms = {"classification": group_cross_entropy(outputs["group_logits"], batch["attributes"],
                                                 batch["valid"])}
  if "anchor_embedding" in outputs:
    if loss_cfg.classify_partners:
      terms["partner_classification"] = group_cross_entropy(
          outputs["positive_group_logits"], batch["positive/attributes"], batch["valid"])
    if loss_cfg.triplet_weight:
      # Workdirs from before the poster's sum was the default averaged (config.json lacks it).
      kwargs = dict(anchor=outputs["anchor_embedding"], positive=outputs["positive_embedding"],
                    negative=outputs["negative_embedding"], example_mask=batch["valid"],
                    reduction=loss_cfg.get("triplet_reduction", "mean"))
      if loss_cfg.triplet_loss == "tste":
        terms["triplet"] = losses.tste_loss(alpha=loss_cfg.alpha, **kwargs)
      elif loss_cfg.triplet_loss == "margin":
        terms["triplet"] = losses.margin_triplet_loss(margin=loss_cfg.margin, **kwargs)
      else:
        raise ValueError(f"loss.triplet_loss = {loss_cfg.triplet_loss!r}; use {TRIPLET_LOSSES}")
  weights = {"triplet": loss_cfg.triplet_weight}
  return sum(weights.get(k, 1.0) * v for k, v in terms.items()), terms


def predict(outputs: dict, batch: dict) -> dict[str, jax.Array]:
  """Per-group class probabilities, concatenated in attribute order: [B, A]."""
  del batch
  return {"attribute_scores": jnp.concatenate(
      [jax.nn.softmax(logits, axis=-1) for logits in outputs["group_logits"]], axis=-1)}


def score(predictions: dict, batch: dict, spec: schema.DatasetSpec) -> dict:
  return {"attributes": metrics.xdomain_attribute_metrics(
      scores=predictions["attribute_scores"], attributes=batch["attributes"],
      groups=spec.attribute_groups, group_names=spec.attribute_group_names,
      valid=batch["valid"])}



# --- the paper's table ------------------------------------------------------------------

def xdomain_table(results: dict[str, dict]) -> str:
  """The multi-task curriculum transfer poster's tables: per-group mAP, mAP_cls (the mean of the
  group columns, as the poster's rows), mP_ins and mR_ins, and the pooled class mean, in %.

  Args:
    results: method -> `metrics.xdomain_attribute_metrics` dict.
  """
  groups = list(next(iter(results.values()))["per_group"])
  rows = {m: [100 * r["per_group"][g] for g in groups]
          + [100 * r["mAP_cls"], 100 * r["mP_ins"], 100 * r["mR_ins"],
             100 * r["mAP_cls_pooled"]]
          for m, r in results.items()}
  return ("Street attributes: per-group mAP, mAP_cls (mean of the groups), mP_ins, mR_ins, and "
          "the mean over all classes pooled, % (higher is better)\n"
          + reporting.format_table([g.capitalize() for g in groups]
                         + ["mAP_cls", "mP_ins", "mR_ins", "pooled mAP"], rows, fmt="{:.2f}"))


def report(results_by_method: dict[str, dict]) -> str:
  return xdomain_table({m: r["attributes"] for m, r in results_by_method.items()})


def mean_baseline(truth: dict, spec: schema.DatasetSpec) -> dict[str, np.ndarray]:
  """Every group's training class frequencies as its scores."""
  attributes, valid = truth["attributes"], truth["valid"]
  labels = metrics.group_labels(attributes, spec.attribute_groups, len(spec.attribute_group_names))
  sizes = np.bincount(spec.attribute_groups)
  return {"attribute_scores": np.concatenate(
      [baselines.class_frequencies(labels[:, g], valid, n) for g, n in enumerate(sizes)])}


SYSTEM = System(
    name="mtct", make_module=make_module,
    batch_fields=("image", "attributes", "valid", "positive/image", "positive/attributes",
                  "negative/image"),
    labels=("attributes",), loss=loss, predict=predict, score=score, report=report,
    best_metric=("attributes/mAP_cls", "max"), mean_baseline=mean_baseline,
    picture=lambda batch, predictions: None, batch_source=batch_sources.CONFIGURED,
    grouped_attributes=True)
