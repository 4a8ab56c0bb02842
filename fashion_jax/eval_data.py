"""What an evaluation reads: a run's evaluation roles, its further evaluators and the first
training examples (for the "training mean" baseline), over its catalog and device mesh.

Built by `Run` for training and by `evaluate.evaluate_workdir` for an existing workdir, and the
only thing besides the model that the evaluation functions take.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from fashion_jax import phases as phases_lib
from fashion_jax import writers
from fashion_jax.data import catalog as catalog_lib
from fashion_jax.data import folds, schema


def first(source, n: int):
  """The first `n` examples of a random-access source (all when n <= 0)."""
  return source if n <= 0 or n >= len(source) else folds.IndexedSource(source, np.arange(n))


@dataclasses.dataclass
class EvalData:
  """The evaluation side of one run of `config` (see the module docstring).

  Attributes: config, system, catalog, dataset_name, spec (the model's heads), mesh, workdir
  (where results go) and is_chief (the process that prints and writes).
  """

  config: object
  system: object
  catalog: catalog_lib.Catalog
  dataset_name: str
  spec: schema.DatasetSpec
  mesh: jax.sharding.Mesh
  workdir: str
  is_chief: bool = dataclasses.field(default_factory=lambda: jax.process_index() == 0)

  @property
  def batch_size(self) -> int:
    return self.config.get("eval_batch_size") or self.config.batch_size

  @property
  def progress(self) -> bool:
    return self.is_chief and bool(self.config.progress) and writers.on_terminal()

  def _selection(self, role: str, data_cfg):
    return self.catalog.selections(data_cfg, self.system.labels)[role]

  def source(self, role: str = "eval", data_cfg=None):
    """The records of the eval (checkpoint selection) or test (final) role of `data_cfg`
    (default the run's data; an evaluator's, `evaluators`)."""
    data_cfg = data_cfg or self.config.data
    return first(self.catalog.source(data_cfg, self._selection(role, data_cfg)),
                 data_cfg.get("eval_max_examples", 0))

  def training_examples(self, n: int):
    """The first `n` training examples of the run's data."""
    data_cfg = self.config.data
    return first(self.catalog.source(data_cfg, self._selection("train", data_cfg)), n)

  def describe(self, role: str, data_cfg=None) -> dict:
    """What a role reads, for the log and the results files."""
    data_cfg = data_cfg or self.config.data
    return {"dataset": self.dataset_name,
            "records": self._selection(role, data_cfg).description,
            "num_examples": len(self.source(role, data_cfg)) if role != "train" else None}

  def evaluators(self) -> list[tuple[str, object]]:
    """(results name, data config) of each final evaluation: the run's own ("test"), then one
    per `config.evals` entry (big_vision-style), "test_<name>" with its data overrides (another
    domain, FashionAI categories, split or size), scored by the same `System.score`."""
    out = [("test", self.config.data)]
    for i, entry in enumerate(self.config.get("evals") or []):
      out.append((f"test_{entry['name']}", phases_lib.merged(
          self.config.data, entry.get("data"), f"config.evals[{i}].data")))
    return out

  def device_fields(self, batch: dict) -> dict:
    """The fields the model and loss read; everything else stays on the host. A field the
    data config does not produce (a segmented image without `data.segmented`) is left out: a
    module that needs it says so."""
    return {k: batch[k] for k in self.system.batch_fields if k in batch}
