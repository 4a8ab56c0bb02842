"""Device mesh and batch placement: batch split over a `data` axis, parameters replicated.

Works unchanged on one CPU, N GPUs, a TPU slice, and several processes (each process feeds its
own slice of the global batch; `jax.make_array_from_process_local_data` assembles them).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
  """A 1-D `data` mesh over the first `num_devices` devices (0 = all of them)."""
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise ValueError(f"asked for {num_devices} devices but only {len(devices)} exist")
    devices = devices[:num_devices]
  # Auto axes: XLA propagates shardings through the model. Under Explicit axes (the default of
  # `jax.make_mesh` in current JAX) every op must agree on its operands' shardings, which
  # library code such as Flax's Dropout (an unsharded random mask selecting over a batch-sharded
  # input) does not do.
  return jax.make_mesh((len(devices),), ("data",), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def put_batch(batch: dict[str, np.ndarray], mesh) -> dict[str, jax.Array]:
  """This process's slice of a global batch -> global arrays split over `data`."""
  sharding = data_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def put_replicated(tree, mesh):
  return jax.device_put(tree, replicated(mesh))


def gather(tree):
  """Global arrays (or this process's numpy arrays) -> the full global numpy arrays."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, tree)
  return multihost_utils.process_allgather(tree, tiled=True)
