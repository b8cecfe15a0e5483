"""k-nearest-neighbour classification as a JAX distance matmul plus top-k.

``knn_evaluate`` picks k on a validation split carved from train (seeded) and
reports test accuracy once, at that k, with all of train as the neighbour set.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from simvae_jax.evaluation.common import count_classes, map_in_batches
from simvae_jax.models import layers


def squared_distances(queries, points):
  """[Q, N] squared Euclidean distances of queries [Q, d] to points [N, d].

  ``|q|^2 - 2 q.p + |p|^2`` cancels between large terms, so the product runs
  in full float32 (``HIGHEST``), not at the TF32 / bfloat16 passes that GPUs
  and TPUs use for float32 matmuls by default; clipped at 0.
  """
  products = jnp.matmul(queries, points.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(
      jnp.sum(queries**2, axis=1, keepdims=True)
      - 2.0 * products
      + jnp.sum(points**2, axis=1),
      0.0,
  )


@functools.partial(jax.jit, static_argnums=(3,))
def _nearest_labels(train_repr, train_labels, queries, max_k: int):
  """Labels [Q, max_k] of each query's nearest training points (Euclidean)."""
  distances = squared_distances(queries, train_repr)
  _, indices = jax.lax.top_k(-distances, max_k)
  return train_labels[indices]


def nearest_labels(
    train_repr: np.ndarray,
    train_labels: np.ndarray,
    queries: np.ndarray,
    max_k: int,
    chunk_size: int | None = None,
) -> np.ndarray:
  """Chunked over queries so that e.g. 10k x 60k distances never sit in memory:
  ``chunk_size`` queries at a time (default 64 on CPU, where a chunk's
  distances then stay in cache: 10,000 CIFAR-10 test queries against 50,000
  points took 1.5 s in chunks of 64 and 3.0-4.5 s in chunks of 512 on 2
  cores; 512 elsewhere).

  Returns int [Q, max_k], nearest first.
  """
  if chunk_size is None:
    chunk_size = 64 if layers.kernel_platform() == "cpu" else 512
  if max_k > len(train_repr):
    raise ValueError(f"k={max_k} exceeds the {len(train_repr)} training points")
  train_repr = jnp.asarray(train_repr, jnp.float32)
  train_labels = jnp.asarray(train_labels)
  return map_in_batches(
      lambda chunk: _nearest_labels(train_repr, train_labels, chunk, max_k),
      np.asarray(queries, np.float32),
      chunk_size,
  )


def vote(neighbour_labels: np.ndarray, k: int, num_classes: int) -> np.ndarray:
  """Majority vote of the first k neighbours [Q, >=k] -> [Q]; ties go to the
  smallest label (as scikit-learn's KNeighborsClassifier)."""
  counts = np.zeros((len(neighbour_labels), num_classes), np.int64)
  rows = np.arange(len(neighbour_labels))
  for column in range(k):
    np.add.at(counts, (rows, neighbour_labels[:, column]), 1)
  return counts.argmax(axis=1)


def knn_predict(
    train_repr, train_labels, queries, k: int, num_classes: int | None = None
) -> np.ndarray:
  """Predicted labels [Q] of a k-NN classifier."""
  num_classes = num_classes or count_classes(train_labels)
  return vote(
      nearest_labels(train_repr, train_labels, queries, k), k, num_classes
  )


def validation_split(num_examples: int, val_fraction: float, seed: int):
  """Seeded (fit indices, validation indices) of a train set."""
  if not 0.0 < val_fraction < 1.0:
    raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
  order = np.random.default_rng(seed).permutation(num_examples)
  num_val = max(1, int(round(val_fraction * num_examples)))
  return order[num_val:], order[:num_val]


def knn_evaluate(
    train_repr,
    train_y,
    test_repr,
    test_y,
    ks: Sequence[int] = tuple(range(1, 21)),
    val_fraction: float = 0.1,
    seed: int = 0,
) -> dict:
  """k chosen on a validation split of train; test accuracy at that k.

  Returns {"knn_acc": test accuracy, "knn_k": chosen k, "knn_val_acc": its
  validation accuracy}; accuracies are fractions.
  """
  train_y, test_y = np.asarray(train_y), np.asarray(test_y)
  num_classes = count_classes(train_y, test_y)
  fit, val = validation_split(len(train_repr), val_fraction, seed)
  neighbours = nearest_labels(
      train_repr[fit], train_y[fit], train_repr[val], max(ks)
  )
  val_accs = {
      k: float(np.mean(vote(neighbours, k, num_classes) == train_y[val]))
      for k in sorted(ks)
  }
  best_k = max(val_accs, key=lambda k: (val_accs[k], -k))
  predictions = knn_predict(train_repr, train_y, test_repr, best_k, num_classes)
  return {
      "knn_acc": float(np.mean(predictions == test_y)),
      "knn_k": best_k,
      "knn_val_acc": val_accs[best_k],
  }
