"""Helpers every evaluator shares: fixed-size batching, label counting and
timing."""

from __future__ import annotations

import contextlib
import time
from typing import Callable

import jax
import numpy as np


def map_in_batches(
    fn: Callable[[jax.Array], jax.Array],
    inputs,
    batch_size: int,
    read: Callable[[int, int], np.ndarray] | None = None,
) -> np.ndarray:
  """Applies a jitted ``fn`` ([b, ...] -> [b, ...]) over inputs [N, ...].

  ``read(start, stop)`` gives rows start..stop-1 (default: slicing ``inputs``),
  so inputs can be streamed from a source batch by batch. The last batch is
  padded with zeros to ``batch_size``, so only one program is compiled; padded
  rows are dropped from the result.
  """
  read = read or (lambda start, stop: inputs[start:stop])
  outputs = []
  for start in range(0, len(inputs), batch_size):
    chunk = np.asarray(read(start, start + batch_size))
    padded = np.zeros((batch_size, *chunk.shape[1:]), chunk.dtype)
    padded[: len(chunk)] = chunk
    outputs.append(np.asarray(fn(padded))[: len(chunk)])
  return np.concatenate(outputs)


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
