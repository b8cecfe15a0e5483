"""The README's table of TPU sizes: the paper's CIFAR-10 and CelebA train
steps compiled for TPU slices from this machine (``simvae_jax.aot``).

python experiments/tpu_sizes.py [--configs=cifar10,celeba] \
    [--topologies=v5e:2x2,v5e:4x4,v4:2x2x1,v5p:2x2x1]

For each config and topology: per-chip peak memory and GFLOP of one step at
the config's global batch, and the largest per-chip batch (a power of two)
that fits a chip. A data-parallel step's per-chip program depends on the
per-chip batch, not on the slice's size, so the largest batch is searched
once per TPU generation and shared by its slices. Writes
``experiments/results/tpu_sizes.md`` (rows are added as they finish; the rows
of (config, slice) pairs not computed in this run are kept, so that
``--configs=celeba --topologies=v4:2x2x1`` adds one row).
"""

from __future__ import annotations

import pathlib
import time

from absl import flags

from simvae_jax import cli, configs
from simvae_jax import aot

_CONFIGS = flags.DEFINE_list("configs", ["cifar10", "celeba"], "Configs.")
_TOPOLOGIES = flags.DEFINE_list(
    "topologies", ["v5e:2x2", "v5e:4x4", "v4:2x2x1", "v5p:2x2x1"], "Slices."
)
_OUT = flags.DEFINE_string(
    "out", "experiments/results/tpu_sizes.md", "Markdown table to write."
)

HEADER = [
    "| config (global batch x J) | slice | chips | peak GiB/chip | GFLOP/chip"
    " | largest batch/chip |",
    "|---|---|---|---|---|---|",
]


def _row_key(row: str) -> tuple[str, str]:
  """(config, slice) of a table row."""
  cells = [cell.strip() for cell in row.strip("|").split("|")]
  return cells[0].split()[0], cells[1]


def main(argv):
  del argv
  out = pathlib.Path(_OUT.value)
  kept = out.read_text().splitlines()[len(HEADER) :] if out.exists() else []
  computed = {
      (name, topology)
      for name in _CONFIGS.value
      for topology in _TOPOLOGIES.value
  }
  lines = HEADER + [row for row in kept if _row_key(row) not in computed]
  largest = {}
  started = time.time()
  for name in _CONFIGS.value:
    config = configs.load(name)
    shape = aot.image_shape_of(config)
    for topology in _TOPOLOGIES.value:
      devices = aot.tpu_devices(topology)
      generation = topology.split(":")[0]
      sized = aot.size(config, devices, shape)
      if (name, generation) not in largest:
        memory = aot.CHIP_MEMORY_GIB[generation] * 2**30
        largest[name, generation] = aot.largest_batch_per_chip(
            config, devices, shape, memory
        )
      lines.append(
          f"| {name} ({config.batch_size} x {config.num_views}) | {topology} "
          f"| {sized['chips']} | {sized['peak_bytes_per_chip'] / 2**30:.2f} "
          f"| {sized['flops_per_chip'] / 1e9:.1f} "
          f"| {largest[name, generation]} |"
      )
      out.write_text("\n".join(lines) + "\n")
      print(lines[-1], f"({time.time() - started:.0f}s)", flush=True)


if __name__ == "__main__":
  cli.run(main)
