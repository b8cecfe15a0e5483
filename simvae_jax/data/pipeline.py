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


def steps_per_epoch(
    num_examples: int, global_batch_size: int, process_count: int = 1
) -> int:
  """Full batches per epoch for each process's slice (remainder dropped)."""
  per_process = num_examples // process_count
  return per_process // local_batch_size(global_batch_size, process_count)


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
  """Shuffled, batched, repeated grain dataset of this process's slice.

  Each element is ``{"image": uint8 [b, H, W, C], "label": int32 [b]}`` with
  ``b = global_batch_size / process_count``. Shuffling is deterministic in
  ``seed`` and differs per epoch; each epoch drops its last partial batch.
  ``num_epochs=None`` repeats forever.
  """
  process_index = (
      jax.process_index() if process_index is None else process_index
  )
  process_count = (
      jax.process_count() if process_count is None else process_count
  )
  batch = local_batch_size(global_batch_size, process_count)
  dataset = grain.MapDataset.source(source)[process_index::process_count]
  if len(dataset) < batch:
    raise ValueError(
        f"Only {len(dataset)} training examples per process, fewer "
        f"than one batch of {batch}."
    )
  return (
      dataset.shuffle(seed=seed)
      .map(_select_image_and_label)
      .batch(batch, drop_remainder=True)
      .repeat(num_epochs)
  )


def make_train_iterator(dataset: grain.MapDataset):
  """Iterator whose position is ``get_state()`` / ``set_state()`` (JSON-able)."""
  return iter(dataset.to_iter_dataset())
