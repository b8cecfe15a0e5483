"""Helpers every evaluator shares: fixed-size batching, label counting and
timing."""

from __future__ import annotations

import contextlib
import time
from typing import Callable

import jax
import numpy as np


def map_in_batches(
    fn: Callable,
    inputs,
    batch_size: int,
    read: Callable[[int, int], object] | None = None,
) -> np.ndarray:
  """Applies a jitted ``fn`` ([b, ...] -> [b, ...]) over inputs [N, ...].

  ``read(start, stop)`` gives rows start..stop-1 (default: slicing ``inputs``),
  so inputs can be streamed from a source batch by batch; it may give a tuple
  of arrays of those rows, which ``fn`` receives as a tuple. The last batch is
  padded with zeros to ``batch_size``, so only one program is compiled; padded
  rows are dropped from the result.
  """
  read = read or (lambda start, stop: inputs[start:stop])
  outputs = []
  for start in range(0, len(inputs), batch_size):
    chunk = jax.tree.map(np.asarray, read(start, start + batch_size))
    rows = len(jax.tree.leaves(chunk)[0])
    padded = jax.tree.map(_pad_rows(batch_size), chunk)
    outputs.append(np.asarray(fn(padded))[:rows])
  return np.concatenate(outputs)


def _pad_rows(size: int) -> Callable[[np.ndarray], np.ndarray]:
  """Pads an array's rows with zeros to ``size``."""

  def pad(array: np.ndarray) -> np.ndarray:
    padded = np.zeros((size, *array.shape[1:]), array.dtype)
    padded[: len(array)] = array
    return padded

  return pad


def count_classes(*labels) -> int:
  """Number of classes of integer label arrays: 1 + their largest label."""
  return int(max(np.max(y) for y in labels)) + 1


class Stopwatch:
  """Seconds per named component, accumulated over uses:
  ``with stopwatch("knn"): ...``; ``seconds`` maps names to totals."""

  def __init__(self):
    self.seconds: dict[str, float] = {}

  @contextlib.contextmanager
  def __call__(self, name: str):
    start = time.perf_counter()
    try:
      yield
    finally:
      elapsed = time.perf_counter() - start
      self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
