"""The persistent XLA compilation cache: a restarted or resumed run takes its
compiled programs from disk instead of compiling them again."""

from __future__ import annotations

import os

import jax


def enable(directory: str) -> str | None:
  """Points JAX's persistent compilation cache at ``directory`` (``~``
  expanded; a ``gs://`` path works too), unless JAX already has one (e.g.
  from ``JAX_COMPILATION_CACHE_DIR``) or ``directory`` is empty. Call it
  before anything is compiled. Returns the directory in use, or None."""
  current = jax.config.jax_compilation_cache_dir
  if current or not directory:
    return current or None
  if "://" not in directory:
    directory = os.path.expanduser(directory)
  jax.config.update("jax_compilation_cache_dir", directory)
  return directory
