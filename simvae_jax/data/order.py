"""The order of training examples: grain's shuffle, a whole epoch at a time.

``grain.MapDataset.shuffle(seed)`` places example ``index_shuffle(i, n - 1,
(seed + epoch) mod 2^32, rounds=4)`` at position ``i`` of each epoch, one
Python call per example (about 4 us: 0.2 s per CIFAR-10 epoch, as long as the
epoch itself takes to read at device speed). ``epoch_permutation`` computes
the same permutation for all positions at once with NumPy, so runs keep the
order they had when grain shuffled records one by one.

grain's ``index_shuffle`` is a cycle-walking Simon block cipher over the
smallest even number of bits (at least 16) that holds ``n - 1``: the word
size is half of that, the round keys come from ``std::seed_seq{seed}``, and
an encrypted value above ``n - 1`` is encrypted again until it falls inside.
Both steps are written out here from their definitions (the C++ standard's
``seed_seq::generate`` and the Simon round function).
"""

from __future__ import annotations

import math

import numpy as np

ROUNDS = 4  # grain's MapDataset.shuffle
_MASK32 = 0xFFFFFFFF


def seed_seq_generate(seed: int, count: int) -> list[int]:
  """``count`` 32-bit words of ``std::seed_seq{seed}.generate`` (the
  algorithm the C++ standard specifies for a one-word seed sequence)."""
  words, size = [0x8B8B8B8B] * count, 1
  if count >= 623:
    t = 11
  elif count >= 68:
    t = 7
  elif count >= 39:
    t = 5
  elif count >= 7:
    t = 3
  else:
    t = (count - 1) // 2
  p = (count - t) // 2
  q = p + t
  mix = lambda x: x ^ (x >> 27)
  for k in range(max(size + 1, count)):
    r1 = (
        1664525
        * mix(
            words[k % count] ^ words[(k + p) % count] ^ words[(k - 1) % count]
        )
    ) & _MASK32
    if k == 0:
      r2 = r1 + size
    elif k <= size:
      r2 = r1 + k % count + (seed & _MASK32)
    else:
      r2 = r1 + k % count
    r2 &= _MASK32
    words[(k + p) % count] = (words[(k + p) % count] + r1) & _MASK32
    words[(k + q) % count] = (words[(k + q) % count] + r2) & _MASK32
    words[k % count] = r2
  start = max(size + 1, count)
  for k in range(start, start + count):
    total = (
        words[k % count] + words[(k + p) % count] + words[(k - 1) % count]
    ) & _MASK32
    r3 = (1566083941 * mix(total)) & _MASK32
    r4 = (r3 - k % count) & _MASK32
    words[(k + p) % count] ^= r3
    words[(k + q) % count] ^= r4
    words[k % count] = r4
  return words


def _word_bits(max_index: int) -> int:
  block = math.ceil(math.log2(max_index))
  return max(block + block % 2, 16) // 2


def _simon_encrypt(values: np.ndarray, keys: list[int], bits: int):
  """Simon rounds on uint64 blocks of ``2 * bits`` bits."""
  mask = np.uint64((1 << bits) - 1)

  def rotl(x, r):
    return ((x << np.uint64(r)) & mask) | (x >> np.uint64(bits - r))

  def f(x):
    return (rotl(x, 1) & rotl(x, 8)) ^ rotl(x, 2)

  left = (values >> np.uint64(bits)) & mask
  right = values & mask
  for i in range(0, len(keys), 2):
    left ^= f(right) ^ (np.uint64(keys[i]) & mask)
    right ^= f(left) ^ (np.uint64(keys[i + 1]) & mask)
  return (left << np.uint64(bits)) | right


def shuffled_positions(positions: np.ndarray, n: int, seed: int) -> np.ndarray:
  """grain's ``index_shuffle(i, n - 1, seed, 4)`` for each ``i`` in
  ``positions`` (int64 [m] in [0, n)): the example at those positions."""
  positions = np.asarray(positions, np.uint64)
  if n <= 1:
    return np.zeros(len(positions), np.int64)
  keys = seed_seq_generate(seed % 2**32, ROUNDS)
  bits = _word_bits(n - 1)
  values = _simon_encrypt(positions, keys, bits)
  outside = np.flatnonzero(values > n - 1)
  while len(outside):  # cycle walking: encrypt again until inside [0, n)
    values[outside] = _simon_encrypt(values[outside], keys, bits)
    outside = outside[values[outside] > n - 1]
  return values.astype(np.int64)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
  """int64 [n]: the example at each position of ``epoch`` under
  ``grain.MapDataset.shuffle(seed)`` (a new permutation every epoch)."""
  return shuffled_positions(np.arange(n), n, (seed + epoch) % 2**32)
