"""Size a run for a TPU slice from any machine: compile it for compile-only
TPU devices and read the compiler's per-chip memory and cost.

python -m simvae_jax.aot --config=configs/cifar10.py --topology=v5e:4x4 \
    [--config.FIELD=VALUE ...] [--largest_batch]

Needs libtpu (``pip install -e ".[tpu]"``), not a TPU: JAX describes the
topology's chips (``jax.experimental.topologies``) and XLA compiles the real
train step (``steps_per_dispatch`` steps per call) and the evaluation encoder
for them; nothing runs and no data is read. Prints one JSON line:

* ``topology``, ``chips``, ``global_batch``;
* ``argument_bytes_per_chip`` (state and batch), ``temp_bytes_per_chip``
  (activations and scratch), ``peak_bytes_per_chip`` (arguments + outputs -
  donated aliases + temporaries) and ``chip_memory_bytes``;
* ``flops_per_chip`` and ``hbm_bytes_per_chip`` of one step (XLA's cost
  analysis), ``collectives`` (operations in the compiled step by kind);
* ``eval_peak_bytes_per_chip`` of the evaluation encoder on a batch of
  ``eval.batch_size`` images;
* with ``--largest_batch``: ``largest_batch_per_chip``, the largest per-chip
  batch (a power of two) whose step fits in the chip's memory.

Exits 1 with one line when the step's peak exceeds the chip's memory, or when
libtpu is missing.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re

import jax
import numpy as np
from absl import flags
from ml_collections import config_flags

from simvae_jax import cli, sharding, train_step
from simvae_jax.evaluation import representations
from simvae_jax.experiment import Experiment
from simvae_jax.models import layers

# HBM per chip by TPU generation (the prefix of the topology name).
CHIP_MEMORY_GIB = {"v4": 32, "v5e": 16, "v5p": 95, "v6e": 32}
MAX_BATCH_PER_CHIP = 2**14
COLLECTIVES = (
    "all-reduce",
    "all-gather",
    "reduce-scatter",
    "all-to-all",
    "collective-permute",
)


class SizingError(RuntimeError):
  """The run cannot be sized (libtpu missing, unknown topology) or does not
  fit; the message is one line for the user."""


class DoesNotFit(SizingError):
  """The compiler found that the program exceeds the chip's memory."""


def _compile(lowered):
  try:
    return lowered.compile()
  except jax.errors.JaxRuntimeError as error:
    if "RESOURCE_EXHAUSTED" not in str(error):
      raise
    shortfall = " ".join(str(error).split(":", 1)[-1].split())[:300]
    raise DoesNotFit(shortfall) from error


def tpu_devices(topology: str) -> list:
  """Compile-only devices of ``topology`` (e.g. 'v5e:2x2')."""
  if importlib.util.find_spec("libtpu") is None:
    raise SizingError(
        'Compiling for a TPU topology needs libtpu: pip install -e ".[tpu]"'
    )
  generation = topology.split(":", 1)[0]
  if generation not in CHIP_MEMORY_GIB:
    raise SizingError(
        f"Unknown TPU generation {generation!r} in --topology={topology}; "
        f"choose one of {sorted(CHIP_MEMORY_GIB)} (e.g. v5e:2x2)"
    )
  # Several processes may load libtpu at once (parallel tests, scripts), and
  # no TPU hosts exist to be found.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
  from jax.experimental import topologies  # pylint: disable=import-outside-toplevel

  # A v4 chip's two TensorCores act as one device (megacore), as on a v4 VM.
  chip = {"chip_config_name": "megacore"} if generation == "v4" else {}
  try:
    return topologies.get_topology_desc(
        topology, platform="tpu", **chip
    ).devices
  except Exception as error:  # libtpu raises XlaRuntimeError and others
    cause = " ".join(str(error).split())[:200]
    raise SizingError(f"No TPU topology {topology!r}: {cause}") from error


def image_shape_of(config) -> tuple[int, ...]:
  """(H, W, C) of the config's images as the networks see them, from its
  dataset facts: a square colour image of ``data.image_size`` when set, else
  ``data.image_shape``."""
  if config.data.get("image_size", 0):
    return (config.data.image_size, config.data.image_size, 3)
  if not config.data.get("image_shape"):
    raise SizingError(
        f"The config of dataset {config.data.name!r} states no "
        "data.image_shape: pass --image_shape=H,W,C"
    )
  return tuple(config.data.image_shape)


def _memory(compiled) -> dict:
  stats = compiled.memory_analysis()
  peak = (
      stats.argument_size_in_bytes
      + stats.output_size_in_bytes
      - stats.alias_size_in_bytes
      + stats.temp_size_in_bytes
  )
  return {
      "argument_bytes_per_chip": int(stats.argument_size_in_bytes),
      "temp_bytes_per_chip": int(stats.temp_size_in_bytes),
      "peak_bytes_per_chip": int(peak),
  }


def _cost(compiled) -> dict:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return {
      "flops_per_chip": float(analysis.get("flops", 0.0)),
      "hbm_bytes_per_chip": float(analysis.get("bytes accessed", 0.0)),
  }


def collectives(compiled) -> dict:
  """{kind: count} of the collective operations in the compiled program."""
  text = compiled.as_text()
  counts = {
      kind: len(re.findall(rf"\b{kind}(?:-start)?\(", text))
      for kind in COLLECTIVES
  }
  return {kind: count for kind, count in counts.items() if count}


def compile_step(experiment: Experiment, platform: str):
  """The train step of ``experiment`` (a full dispatch) compiled for its
  devices, with the kernels of ``platform``."""
  config = experiment.config
  batches = train_step.abstract_batches(
      config.steps_per_dispatch,
      config.batch_size,
      experiment.image_shape,
      experiment.mesh,
  )
  diagnose = jax.ShapeDtypeStruct(
      (), np.bool_, sharding=sharding.replicated(experiment.mesh)
  )
  with layers.compiling_for(platform):
    lowered = experiment.compile_steps().lower(
        experiment.abstract_state(), batches, diagnose
    )
  return _compile(lowered)


def compile_encoder(experiment: Experiment, platform: str):
  """The evaluation encoder on one batch of ``eval.batch_size`` images."""
  config, mesh = experiment.config, experiment.mesh
  state = experiment.abstract_state()
  batch = -(-config.eval.get("batch_size", 1000) // mesh.size) * mesh.size
  images = jax.ShapeDtypeStruct(
      (batch, *experiment.image_shape),
      np.uint8,
      sharding=sharding.batch_sharded(mesh),
  )
  binarize = config.augment.binarize
  encode = representations.compiled_represent(experiment.method, binarize, mesh)
  with layers.compiling_for(platform):
    lowered = encode.lower(state.params, state.model_state, images)
  return _compile(lowered)


def size(config, devices, image_shape, platform: str = "tpu") -> dict:
  """Per-chip memory and cost of ``config``'s step on ``devices``."""
  experiment = Experiment.from_config(config, devices, image_shape)
  step = compile_step(experiment, platform)
  encoder = compile_encoder(experiment, platform)
  return {
      "chips": len(devices),
      "global_batch": config.batch_size,
      "steps_per_dispatch": config.steps_per_dispatch,
      **_memory(step),
      **_cost(step),
      "collectives": collectives(step),
      "eval_peak_bytes_per_chip": _memory(encoder)["peak_bytes_per_chip"],
  }


def _step_peak(config, devices, image_shape, per_chip: int) -> int:
  trial = config.copy_and_resolve_references()
  trial.batch_size = per_chip * len(devices)
  experiment = Experiment.from_config(trial, devices, image_shape)
  try:
    return _memory(compile_step(experiment, "tpu"))["peak_bytes_per_chip"]
  except DoesNotFit:
    return float("inf")


def largest_batch_per_chip(config, devices, image_shape, memory: int) -> int:
  """The largest power-of-two per-chip batch whose step fits in ``memory``
  bytes per chip (0 if not even one image does). The peak grows linearly
  with the batch: two compiles (8 and 16 per chip) predict it, and compiles
  around the prediction confirm it (about four in all). Searched up to
  ``MAX_BATCH_PER_CHIP``."""
  peak = functools.partial(_step_peak, config, devices, image_shape)
  low, high = peak(8), peak(16)
  per_image = max((high - low) / 8, 1.0)
  predicted = max(1, min(MAX_BATCH_PER_CHIP, 8 + (memory - low) / per_image))
  best = 2 ** int(np.log2(predicted))
  while best >= 1 and peak(best) > memory:
    best //= 2
  if best == 0:
    return 0
  while best < MAX_BATCH_PER_CHIP and peak(2 * best) <= memory:
    best *= 2
  return best


def define_flags() -> None:
  """The command line's flags (defined only when run as a program, so that
  scripts importing this module keep their own)."""
  config_flags.DEFINE_config_file("config", None, "Config file.")
  flags.DEFINE_string(
      "topology", None, "TPU slice, e.g. v5e:2x2, v5e:4x4, v4:2x2x1, v5p:2x2x1."
  )
  flags.DEFINE_bool(
      "largest_batch",
      False,
      "Also find the largest per-chip batch (a power of two) that fits.",
  )
  flags.DEFINE_list(
      "image_shape",
      [],
      "H,W,C of the images; default: the config's data.image_shape.",
  )
  flags.mark_flags_as_required(["config", "topology"])


def main(argv):
  del argv
  options = flags.FLAGS
  config, topology = options.config, options.topology
  try:
    devices = tpu_devices(topology)
    image_shape = (
        tuple(int(n) for n in options.image_shape)
        if options.image_shape
        else image_shape_of(config)
    )
    memory = CHIP_MEMORY_GIB[topology.split(":", 1)[0]] * 2**30
    result = {
        "topology": topology,
        **size(config, devices, image_shape),
        "chip_memory_bytes": memory,
    }
    if options.largest_batch:
      result["largest_batch_per_chip"] = largest_batch_per_chip(
          config, devices, image_shape, memory
      )
  except DoesNotFit as error:
    _exit_short(topology, config, f"the compiler: {error}")
  print(json.dumps(result), flush=True)
  if result["peak_bytes_per_chip"] > memory:
    _exit_short(
        topology,
        config,
        f"it needs {result['peak_bytes_per_chip'] / 2**30:.2f} GiB per chip, "
        f"more than the {memory / 2**30:.0f} GiB of a chip",
    )


def _exit_short(topology: str, config, why: str):
  cli.fail(
      f"the step does not fit on {topology} ({why}): lower "
      f"--config.batch_size (global {config.batch_size}) or use more chips.",
      hint=False,
  )


if __name__ == "__main__":
  define_flags()
  cli.run(main, quiet_errors=(SizingError,))
