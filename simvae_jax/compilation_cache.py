"""The persistent XLA compilation cache: a restarted or resumed run takes its
compiled programs from disk instead of compiling them again."""

from __future__ import annotations

import os

import jax

# Programs that took at least this long to compile are cached (JAX's own
# default is 1 s). The evaluation's programs (probes, k-means, the networks'
# inference passes) take 0.1-1 s each: with JAX's default a restarted CIFAR-10
# evaluation compiled 8.8 s of them again; with this, 1.1 s (16 entries, 0.7
# MB). ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` overrides it.
MIN_COMPILE_SECONDS = 0.1


def enable(directory: str) -> str | None:
  """Points JAX's persistent compilation cache at ``directory`` (``~``
  expanded; a ``gs://`` path works too), unless JAX already has one (e.g.
  from ``JAX_COMPILATION_CACHE_DIR``) or ``directory`` is empty, and caches
  programs that took ``MIN_COMPILE_SECONDS`` or more to compile unless the
  environment sets the minimum. Call it before anything is compiled. Returns
  the directory in use, or None."""
  current = jax.config.jax_compilation_cache_dir
  if current or not directory:
    return current or None
  if "://" not in directory:
    directory = os.path.expanduser(directory)
  jax.config.update("jax_compilation_cache_dir", directory)
  if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS
    )
  return directory
