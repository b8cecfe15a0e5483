"""Every random key and seed of a run, derived from ``config.seed`` by purpose.

``purpose_key(seed, "init")`` and ``purpose_key(seed, "train")`` are
independent keys; no key is reused for two purposes, and nothing is derived by
arithmetic on the seed (``seed + 1`` would collide with the next seed's run).
"""

from __future__ import annotations

import zlib

import jax


def _purpose_id(purpose: str) -> int:
  return zlib.crc32(purpose.encode()) & 0x7FFFFFFF


def purpose_key(seed: int, purpose: str) -> jax.Array:
  """PRNG key for ``purpose`` (e.g. "init", "train", "samples") of run ``seed``."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), _purpose_id(purpose))


def purpose_seed(seed: int, purpose: str) -> int:
  """Integer seed (for host-side shuffling) for ``purpose`` of run ``seed``."""
  key = purpose_key(seed, purpose)
  return int(jax.random.randint(key, (), 0, 2**31 - 1))
