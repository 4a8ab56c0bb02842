"""What a model file declares so that the one trainer and evaluator can run it.

A model file exports its Flax module and a `System`: how to build the module from the config and
the dataset, which batch fields it reads, its loss, its on-device predictions, and how those
predictions are scored and printed. The trainer never special-cases a model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import numpy as np

from fashion_jax.data import schema

# loss(outputs, batch, loss_cfg) -> (total, {term_name: value}); pure and jittable.
LossFn = Callable[[dict, dict, object], tuple[jax.Array, dict[str, jax.Array]]]
# predict(outputs, batch) -> {name: array}; runs on device inside the compiled eval step.
PredictFn = Callable[[dict, dict], dict[str, jax.Array]]
# score(predictions, batch, spec) -> metrics dict; host numpy over the whole evaluation set.
ScoreFn = Callable[[dict[str, np.ndarray], dict[str, np.ndarray], schema.DatasetSpec], dict]


@dataclasses.dataclass(frozen=True)
class System:
  """A trainable, evaluable system.

  Attributes:
    name: registry name, e.g. "fpm".
    make_module: (model_cfg, dataset_spec) -> Linen module whose `__call__(batch, train)`
      returns a dict of outputs.
    batch_fields: the fields of an input batch the module and loss read (sent to device).
    loss: see `LossFn`.
    predict: see `PredictFn`.
    score: see `ScoreFn`.
    report: {method name: metrics dict} -> text table in the paper's layout, one row per method
      (the trained model and the baselines it is compared with).
    best_metric: (flat metric name, "min" or "max") that selects the best checkpoint.
  """

  name: str
  make_module: Callable[[object, schema.DatasetSpec], nn.Module]
  batch_fields: tuple[str, ...]
  loss: LossFn
  predict: PredictFn
  score: ScoreFn
  report: Callable[[dict[str, dict]], str]
  best_metric: tuple[str, str]
