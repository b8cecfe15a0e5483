"""XLA:CPU compiler options of the package's compiled programs.

Each set is passed as ``jax.jit(..., compiler_options=...)`` to programs
compiled for CPU devices, where the XLA knows its options (probed once per
set); programs for GPU or TPU devices (compile-only TPU devices on a CPU host
included), or under an XLA that no longer has an option, compile with XLA's
defaults.

* ``inference`` (evaluation's representations and reconstructions): dots
  through YNNPACK. The CIFAR-10 encoder's forward pass runs 1.6x faster on 2
  cores (44-50 -> 28-31 ms for 64 images); training steps gain nothing.
* ``training`` (the train step): copy insertion by region analysis. With the
  default analysis XLA:CPU copies every donated parameter at every step
  before updating it in place (9 copies, 22.6 MB, for the MNIST MLP), because
  the backward pass reads a layer's weights in a matmul that the update of
  that layer does not wait for; the region analysis orders them instead.
  The step computes the same numbers (tested bitwise) from jax 0.8.2, the
  lower bound: the XLA of 0.8.0 and 0.8.1 miscompiled it on an AVX-512 CPU.
* ``initialisation`` (programs that run once: the initial train state, the
  post-hoc decoder's and the FID classifier's initial parameters): LLVM at
  -O1 instead of -O2. Their random initialisers unroll into thousands of
  threefry operations that XLA:CPU compiled for 7-9 s for a conv network and
  ran in 2 ms: the CIFAR-10 initial state compiles in 3.6 s instead of 9.0 s,
  the same values bit for bit (tested; -O0 changes them). Run eagerly
  instead, op by op, the CIFAR-10 decoder's initialisation took 27 s.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from simvae_jax import sharding

OPTION_SETS = {
    "inference": {
        "xla_cpu_experimental_ynn_fusion_type": (
            "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
        )
    },
    "training": {"xla_cpu_copy_insertion_use_region_analysis": True},
    "initialisation": {"xla_backend_optimization_level": 1},
}


def for_mesh(name: str, mesh: jax.sharding.Mesh) -> dict | None:
  """The compiler options of set ``name`` for a program over ``mesh``:
  ``cpu_options(name)`` on CPU devices, None (XLA's defaults) on others."""
  if mesh.devices.flat[0].platform != "cpu":
    return None
  return cpu_options(name)


def jit_initialisation(fn, mesh: jax.sharding.Mesh | None = None, **jit_kwargs):
  """``jax.jit(fn, **jit_kwargs)`` compiled with the ``initialisation`` set
  for ``mesh`` (default: this process's devices), for a program that runs
  once."""
  mesh = mesh or sharding.make_mesh(jax.local_devices())
  return jax.jit(
      fn, compiler_options=for_mesh("initialisation", mesh), **jit_kwargs
  )


@functools.lru_cache(maxsize=None)
def cpu_options(name: str) -> dict | None:
  """``OPTION_SETS[name]`` where this CPU's XLA knows them; None (XLA's
  defaults) where it lacks one of the options."""
  options = dict(OPTION_SETS[name])
  try:
    jax.jit(jnp.negative, compiler_options=options).lower(
        jax.device_put(jnp.zeros(1), jax.devices("cpu")[0])
    ).compile()
  except jax.errors.JaxRuntimeError:
    return None
  return options
