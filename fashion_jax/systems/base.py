"""What a model file declares so that the one trainer and evaluator can run it.

A system file `fashion_jax/systems/<name>.py` exports its Flax module and `SYSTEM`, a `System`: how
to build the module from the config and the dataset, which batch fields it reads, the labels it
needs, its loss, its on-device predictions, how those are scored, printed and drawn, its
"training mean" baseline, the metric that picks the best checkpoint and, optionally, its own
source of training batches. `config.system = "<name>"` selects it; the trainer never
special-cases a model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import numpy as np

from fashion_jax import visualize
from fashion_jax.data import batch_sources, schema

# loss(outputs, batch, loss_cfg) -> (total, {term_name: value}); pure and jittable.
LossFn = Callable[[dict, dict, object], tuple[jax.Array, dict[str, jax.Array]]]
# predict(outputs, batch) -> {name: array}; runs on device inside the compiled eval step.
PredictFn = Callable[[dict, dict], dict[str, jax.Array]]
# score(predictions, batch, spec) -> metrics dict; host numpy over the whole evaluation set.
ScoreFn = Callable[[dict[str, np.ndarray], dict[str, np.ndarray], schema.DatasetSpec], dict]
# mean_baseline(training ground truth, spec) -> one example's predictions (numpy).
BaselineFn = Callable[[dict[str, np.ndarray], schema.DatasetSpec], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class System:
  """A trainable, evaluable system.

  Attributes:
    name: the model file's name, e.g. "fpm".
    make_module: (model_cfg, dataset_spec) -> Linen module whose `__call__(batch, train)`
      returns a dict of outputs.
    batch_fields: the fields of an input batch the module and loss read (sent to device).
    labels: the `schema.LABEL_KINDS` it trains and is scored on; a split without them is never
      scored (a hold-out of the training split stands in).
    loss: see `LossFn`.
    predict: see `PredictFn`.
    score: see `ScoreFn`.
    report: {method name: metrics dict} -> text table in the paper's layout, one row per method
      (the trained model and the baselines it is compared with).
    best_metric: (flat metric name, "min" or "max") that selects the best checkpoint.
    mean_baseline: see `BaselineFn`; it reads the host fields of evaluation batches (everything
      but pixels, in the network-input frame, with `valid`).
    picture: (host batch, predictions) -> RGB image of the first examples, or None.
    batch_source: where training batches come from (default: one augmented example per row).
    grouped_attributes: its `attribute_scores` are one softmax per attribute group (each group
      names one class), not independent sigmoids; `fashion_jax.load`'s results say so.
  """

  name: str
  make_module: Callable[[object, schema.DatasetSpec], nn.Module]
  batch_fields: tuple[str, ...]
  labels: tuple[str, ...]
  loss: LossFn
  predict: PredictFn
  score: ScoreFn
  report: Callable[[dict[str, dict]], str]
  best_metric: tuple[str, str]
  mean_baseline: BaselineFn
  picture: Callable[[dict, dict], np.ndarray | None] = visualize.prediction_grid
  batch_source: batch_sources.BatchSource = batch_sources.EXAMPLES
  grouped_attributes: bool = False
