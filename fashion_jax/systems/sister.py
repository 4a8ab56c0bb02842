"""SisterNetwork (Lim, Han and Lee, 2018): 26 clothing labels of the Clothing Attributes Dataset
from the image and its semantically segmented copy (background removed, filled white).

Streams (section 4): a ResNet on the original image (`main_stream`: ResNet-50/101/152 from
ImageNet) and a smaller ResNet-50 on the segmented image (`segmented_stream`); each ends with its
last average pool replaced by a 7x7 max pool (on the 7x7 map of a 224 input: the global max,
taken as the global max at any input size) -> 2048-d features. Variants (`model.variant`):
  * baseline: the main stream only, FC-1024 + ReLU, then the output layer (the base setting);
    with `model.main_field = "segmented_image"` it reads the segmented image alone: the
    single-stream models of the paper's Table 1 and Fig. 4 (FCN-White);
  * sister_a: FC-1024 + ReLU on each stream, element-wise sum, the output layer (Fig. 1);
  * sister_b: no FC; the two pooled 2048-d vectors meet by their Hadamard product (both streams
    are bottleneck ResNets, so both are 2048-d; no projection is needed), then the output layer
    (Fig. 2);
  * gated (Table 3; the paper shows them only in its Fig. 3, so this is our reading): FC-1024 +
    ReLU on each stream (a, b), a gate from their concatenation, g = sigmoid(W [a; b] + c),
      gate_single:  one value per image (W: 2048 -> 1),  g a + (1 - g) b;
      gate_add:     one value per feature (W: 2048 -> 1024), g * a + (1 - g) * b;
      gate_concat:  the same gate, [g * a; (1 - g) * b] (2048-d) into the output layer.
The symmetric twin of section 4.2 is Sister-A with the segmented stream as large as the main one
(`model.segmented_stage_sizes` = `model.stage_sizes`; configs/sister.py variant `twin`).
Output: one linear layer of 23 + 7 + 3 + 3 units: the 23 binary labels (sigmoid) and the three
multi-class labels category, neckline, sleeve length (softmax each).
Loss: the mean over the 26 labels of each label's loss (binary or categorical cross-entropy)
averaged over the images where it is present (missing labels, -1, are masked): every label
weighs the same, as in the reported mean accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fashion_jax import baselines, losses, metrics, reporting, visualize
from fashion_jax.data import image_conventions, schema
from fashion_jax.models import resnet
from fashion_jax.systems.base import System

VARIANTS = ("baseline", "sister_a", "sister_b", "gate_single", "gate_add", "gate_concat")
NUM_BINARY = len(schema.DCSA_BINARY_LABELS)
CLASS_COUNTS = tuple(len(v) for v in schema.DCSA_MULTICLASS_LABELS.values())  # 7, 3, 3
MULTICLASS = tuple(schema.DCSA_MULTICLASS_LABELS)


class SisterNet(nn.Module):
  """`__call__(batch, train)` reads `image` and (but for the baseline) `segmented_image`
  [B, H, W, 3] uint8; returns `binary_logits` [B, 23] and `<label>_logits` [B, classes] for
  category, neckline and sleevelength."""

  variant: str = "sister_a"
  stage_sizes: Sequence[int] = (3, 4, 6, 3)  # the main stream (ResNet-50)
  segmented_stage_sizes: Sequence[int] = (3, 4, 6, 3)  # the smaller stream (ResNet-50)
  width: int = 64
  segmented_width: int = 64
  fc_width: int = 1024
  segmented_field: str = "segmented_image"  # "image": the second stream sees no segmentation
  main_field: str = "image"  # "segmented_image": FCN-White, one stream on the segmented image
  dtype: jnp.dtype = jnp.float32

  def _stream(self, image, sizes, width, name, train):
    x = image_conventions.normalize(image, self.dtype)
    features = resnet.ResNet(stage_sizes=tuple(sizes), num_classes=None, width=width,
                             dtype=self.dtype, name=name)(x, train, stop_at="stage4")["stage4"]
    return jnp.max(features, axis=(1, 2))  # the 7x7 max pool of a 224 input, at any size

  def _fc(self, x, name):
    return nn.relu(nn.Dense(self.fc_width, dtype=self.dtype, name=name)(x))

  @nn.compact
  def __call__(self, batch, train: bool = False):
    main = self._stream(batch[self.main_field], self.stage_sizes, self.width, "main_stream",
                        train)
    if self.variant == "baseline":
      fused = self._fc(main, "main_fc")
    else:
      if self.segmented_field not in batch:
        raise ValueError(f"SisterNetwork {self.variant} reads {self.segmented_field!r}: set "
                         "config.data.segmented (and give the dataset masks)")
      other = self._stream(batch[self.segmented_field], self.segmented_stage_sizes,
                           self.segmented_width, "segmented_stream", train)
      if self.variant == "sister_b":
        fused = main * other
      else:
        a, b = self._fc(main, "main_fc"), self._fc(other, "segmented_fc")
        if self.variant == "sister_a":
          fused = a + b
        else:
          units = 1 if self.variant == "gate_single" else self.fc_width
          gate = nn.sigmoid(nn.Dense(units, dtype=self.dtype, name="gate")(
              jnp.concatenate([a, b], axis=-1)))
          fused = (jnp.concatenate([gate * a, (1 - gate) * b], axis=-1)
                   if self.variant == "gate_concat" else gate * a + (1 - gate) * b)
    logits = nn.Dense(NUM_BINARY + sum(CLASS_COUNTS), dtype=self.dtype,
                      name="output")(fused).astype(jnp.float32)
    ends = np.cumsum((NUM_BINARY, *CLASS_COUNTS))
    parts = jnp.split(logits, ends[:-1], axis=-1)
    return {"binary_logits": parts[0],
            **{f"{name}_logits": part for name, part in zip(MULTICLASS, parts[1:], strict=True)}}


def make_module(model_cfg, spec: schema.DatasetSpec) -> SisterNet:
  del spec  # the 26 DCSA labels are fixed by the schema
  if model_cfg.variant not in VARIANTS:
    raise ValueError(f"config.model.variant = {model_cfg.variant!r}; use one of {VARIANTS}")
  if model_cfg.variant == "sister_b" and model_cfg.width != model_cfg.segmented_width:
    raise ValueError("Sister-B multiplies the two streams' pooled features: give them the same "
                     f"width (model.width {model_cfg.width}, model.segmented_width "
                     f"{model_cfg.segmented_width})")
  return SisterNet(variant=model_cfg.variant, stage_sizes=tuple(model_cfg.stage_sizes),
                   segmented_stage_sizes=tuple(model_cfg.segmented_stage_sizes),
                   width=model_cfg.width, segmented_width=model_cfg.segmented_width,
                   fc_width=model_cfg.fc_width, segmented_field=model_cfg.segmented_field,
                   main_field=model_cfg.get("main_field", "image"),
                   dtype=jnp.dtype(model_cfg.dtype))


def per_label_losses(outputs: dict, labels: jax.Array, valid: jax.Array) -> jax.Array:
  """[26] each label's cross-entropy averaged over the valid images where it is present."""
  binary = labels[:, :NUM_BINARY]
  present = (binary >= 0) & valid[:, None]
  logits = outputs["binary_logits"]
  targets = jnp.where(present, binary, 0).astype(jnp.float32)
  nll = -(targets * jax.nn.log_sigmoid(logits) + (1 - targets) * jax.nn.log_sigmoid(-logits))
  mask = present.astype(jnp.float32)
  binary_losses = jnp.sum(nll * mask, axis=0) / jnp.maximum(jnp.sum(mask, axis=0), 1.0)
  multiclass = [losses.softmax_cross_entropy(
      logits=outputs[f"{name}_logits"], labels=labels[:, NUM_BINARY + j],
      example_mask=valid & (labels[:, NUM_BINARY + j] >= 0)) for j, name in enumerate(MULTICLASS)]
  return jnp.concatenate([binary_losses, jnp.stack(multiclass)])


def loss(outputs: dict, batch: dict, loss_cfg) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The mean of the 26 per-label losses (see the module docstring)."""
  del loss_cfg
  per_label = per_label_losses(outputs, batch["dcsa_labels"], batch["valid"])
  return jnp.mean(per_label), {"binary": jnp.mean(per_label[:NUM_BINARY]),
                               **{name: per_label[NUM_BINARY + j]
                                  for j, name in enumerate(MULTICLASS)}}


def predict(outputs: dict, batch: dict) -> dict[str, jax.Array]:
  """Binary label scores [B, 23] and per-class probabilities of the multi-class labels."""
  del batch
  return {"binary_scores": jax.nn.sigmoid(outputs["binary_logits"]),
          **{f"{name}_scores": jax.nn.softmax(outputs[f"{name}_logits"]) for name in MULTICLASS}}


def score(predictions: dict, batch: dict, spec: schema.DatasetSpec) -> dict:
  del spec
  return {"dcsa": metrics.dcsa_accuracy(
      binary_scores=predictions["binary_scores"],
      class_scores=[predictions[f"{name}_scores"] for name in MULTICLASS],
      labels=batch["dcsa_labels"], valid=batch["valid"])}



# --- the paper's table ------------------------------------------------------------------

def dcsa_table(results: dict[str, dict]) -> str:
  """SisterNetwork's mean accuracy (MACC, Tables 1-3) and the per-label accuracies, in %.

  Args:
    results: method -> `metrics.dcsa_accuracy` dict.
  """
  from fashion_jax.data import schema

  labels = list(schema.DCSA_LABELS)
  halves = (labels[:13], labels[13:])
  text = ["Clothing attributes: mean accuracy over labels (MACC) and per-label accuracy, % "
          "(higher is better)",
          reporting.format_table(["MACC", "labels"], {m: [100 * r["macc"], r["num_labels"]]
                                            for m, r in results.items()}, fmt="{:.2f}")]
  for half in halves:
    text.append(reporting.format_table(half, {m: [100 * r["per_label"][n] for n in half]
                                    for m, r in results.items()}, fmt="{:.1f}"))
  return "\n\n".join(text)


def report(results_by_method: dict[str, dict]) -> str:
  return dcsa_table({m: r["dcsa"] for m, r in results_by_method.items()})


def mean_baseline(truth: dict, spec: schema.DatasetSpec) -> dict[str, np.ndarray]:
  """The majority-class predictor: binary scores = training positive rates (present iff the
  label is present in most training images), class scores = training class frequencies."""
  del spec
  labels, valid = truth["dcsa_labels"], truth["valid"]
  out = {"binary_scores": baselines.positive_rates(labels[:, :NUM_BINARY], valid)}
  for j, (name, count) in enumerate(zip(MULTICLASS, CLASS_COUNTS, strict=True)):
    out[f"{name}_scores"] = baselines.class_frequencies(labels[:, NUM_BINARY + j], valid, count)
  return out


def picture(batch: dict, predictions: dict, n: int = 8) -> np.ndarray | None:
  """The streams' inputs side by side for the first images: the image, then its segmented copy
  (what the segmentation removed is what the second stream never sees)."""
  del predictions
  if "segmented_image" not in batch:
    return None
  scale = max(1, 128 // batch["image"].shape[1])
  enlarge = lambda x: np.repeat(np.repeat(x, scale, axis=0), scale, axis=1)
  panels = [enlarge(batch[k][i]) for i in np.flatnonzero(batch["valid"])[:n]
            for k in ("image", "segmented_image")]
  return visualize.grid(panels, columns=4) if panels else None


SYSTEM = System(
    name="sister", make_module=make_module,
    batch_fields=("image", "segmented_image", "dcsa_labels", "valid"), labels=("dcsa_labels",),
    loss=loss, predict=predict, score=score, report=report, best_metric=("dcsa/macc", "max"),
    mean_baseline=mean_baseline, picture=picture)
