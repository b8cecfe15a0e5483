"""Host-side training pipeline: grain over a random-access source.

The pipeline only shuffles and batches uint8 images; every augmentation happens on
the device inside the jitted step (see ``augment.py``), so host cost does not grow
with the number of views J.
"""

from __future__ import annotations

from typing import Any, Sequence

import grain
import jax
import numpy as np


def local_batch_size(global_batch_size: int, process_count: int) -> int:
  """Images each process loads per step; errors if the split is uneven."""
  if global_batch_size % process_count:
    raise ValueError(
        f"Global batch size {global_batch_size} is not divisible by the number "
        f"of processes {process_count}."
    )
  return global_batch_size // process_count


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
  """Full global batches per epoch (the remainder is dropped)."""
  return num_examples // global_batch_size


def _select_image_and_label(record: dict[str, Any]) -> dict[str, np.ndarray]:
  return {
      "image": np.asarray(record["image"], np.uint8),
      "label": np.asarray(record["label"], np.int32),
  }


def make_train_dataset(
    source: Sequence[dict[str, Any]],
    global_batch_size: int,
    seed: int,
    num_epochs: int | None = None,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.MapDataset:
  """Shuffled, batched, repeated grain dataset of this process's share.

  Each element is ``{"image": uint8 [b, H, W, C], "label": int32 [b]}`` with
  ``b = global_batch_size / process_count``. Every process shuffles all
  examples alike (``seed``; a new permutation each epoch) and reads only its
  own part of each global batch, so the global batches, and hence the run, do
  not depend on the number of processes. Each epoch drops its last partial
  global batch. ``num_epochs=None`` repeats forever.
  """
  process_index = (
      jax.process_index() if process_index is None else process_index
  )
  process_count = (
      jax.process_count() if process_count is None else process_count
  )
  batch = local_batch_size(global_batch_size, process_count)
  global_batches = steps_per_epoch(len(source), global_batch_size)
  if global_batches == 0:
    raise ValueError(
        f"Only {len(source)} training examples, fewer than one batch of "
        f"{global_batch_size}."
    )
  local_batches = (
      grain.MapDataset.source(source)
      .shuffle(seed=seed)
      .map(_select_image_and_label)
      .batch(batch, drop_remainder=True)
  )
  # Local batch k * process_count + p is process p's part of global batch k.
  mine = local_batches[: global_batches * process_count]
  return mine[process_index::process_count].repeat(num_epochs)


def make_train_iterator(dataset: grain.MapDataset):
  """Iterator whose position is ``get_state()`` / ``set_state()`` (JSON-able)."""
  return iter(dataset.to_iter_dataset())
