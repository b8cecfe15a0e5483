"""XLA:CPU compiler options of the package's compiled programs.

Each set is passed as ``jax.jit(..., compiler_options=...)`` on a CPU backend
whose XLA knows its options (probed once per set); elsewhere (GPU, TPU, or an
XLA that no longer has an option) the programs compile with XLA's defaults.

* ``inference`` (evaluation's representations and reconstructions): dots
  through YNNPACK. The CIFAR-10 encoder's forward pass runs 1.6x faster on 2
  cores (44-50 -> 28-31 ms for 64 images); training steps gain nothing.
* ``training`` (the train step): copy insertion by region analysis. With the
  default analysis XLA:CPU copies every donated parameter at every step
  before updating it in place (9 copies, 22.6 MB, for the MNIST MLP), because
  the backward pass reads a layer's weights in a matmul that the update of
  that layer does not wait for; the region analysis orders them instead.
  The step computes the same numbers (tested bitwise).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

OPTION_SETS = {
    "inference": {
        "xla_cpu_experimental_ynn_fusion_type": (
            "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
        )
    },
    "training": {"xla_cpu_copy_insertion_use_region_analysis": True},
}


@functools.lru_cache(maxsize=None)
def cpu_options(name: str) -> dict | None:
  """``OPTION_SETS[name]`` on a CPU backend whose XLA knows them; None (XLA's
  defaults) on other backends, or where an XLA lacks one of the options."""
  if jax.default_backend() != "cpu":
    return None
  options = dict(OPTION_SETS[name])
  try:
    jax.jit(jnp.negative, compiler_options=options).lower(
        jnp.zeros(1)
    ).compile()
  except jax.errors.JaxRuntimeError:
    return None
  return options
