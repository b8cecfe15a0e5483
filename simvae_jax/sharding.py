"""Device mesh and shardings: batch split over a ``data`` axis, state replicated.

The losses are written over the *global* batch; XLA inserts the collectives, so
the same code runs on one CPU, several GPUs or a multi-host TPU slice.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  """1-D mesh over ``devices`` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the ``data`` axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def steps_sharded(mesh: Mesh) -> NamedSharding:
  """Stacked batches ``[K, B, ...]`` of K steps: the batch axis (second) split
  over the ``data`` axis."""
  return NamedSharding(mesh, PartitionSpec(None, DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
  """Raises a clear error if the batch cannot be split evenly over devices."""
  if global_batch_size % mesh.size:
    raise ValueError(
        f"Global batch size {global_batch_size} is not divisible by the "
        f"{mesh.size} devices of the mesh; choose a multiple of {mesh.size}."
    )


def to_global_batch(local_batch: dict, mesh: Mesh) -> dict:
  """Assembles each process's slice {name: [b, ...]} into global sharded arrays."""
  sharding = batch_sharded(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch
  )


def to_global_steps(local_batches: dict, mesh: Mesh) -> dict:
  """Each process's K stacked slices {name: [K, b, ...]} as global sharded
  arrays [K, B, ...]."""
  sharding = steps_sharded(mesh)
  if jax.process_count() == 1:  # local is global: a plain (faster) transfer
    return jax.device_put(local_batches, sharding)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x),
      local_batches,
  )


def global_array(host_array: np.ndarray, mesh: Mesh) -> jax.Array:
  """A global array split over the ``data`` axis from an array every process
  holds in full (e.g. an evaluation batch): each process supplies the rows of
  its own devices."""
  return jax.make_array_from_callback(
      host_array.shape, batch_sharded(mesh), lambda index: host_array[index]
  )


def replicate(value, mesh: Mesh):
  """A value every process holds (e.g. a PRNG key) as a replicated array."""
  return jax.device_put(value, replicated(mesh))
