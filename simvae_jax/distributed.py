"""Multi-process (multi-host) start-up: ``jax.distributed.initialize``.

With no explicit addresses JAX detects the cluster itself (Cloud TPU pod
slices, SLURM, Open MPI, ...). ``coordinator_address``, ``num_processes`` and
``process_id`` set it explicitly, e.g. to run N processes on one machine. CPU
collectives between processes use gloo, so the same command runs on CPUs too.
"""

from __future__ import annotations

import jax


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
  """Joins the run's processes (call before anything else touches JAX)."""
  explicit = (coordinator_address, num_processes, process_id)
  if any(value is not None for value in explicit) and None in explicit:
    raise ValueError(
        "Give all of --coordinator_address=HOST:PORT, --num_processes=N and "
        "--process_id=I, or none of them (auto-detection)."
    )
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
      coordinator_address=coordinator_address,
      num_processes=num_processes,
      process_id=process_id,
  )
