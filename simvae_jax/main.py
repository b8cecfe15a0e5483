"""Command line: python -m simvae_jax.main --config=configs/digits.py --workdir=DIR

Any config field can be overridden, e.g. ``--config.seed=1 --config.num_steps=100``.
Mistakes (an unknown method or config key, a missing data file, a batch that
does not split over the devices, ...) end in one line saying what is wrong and
a non-zero exit; ``--verbose`` shows the traceback instead.
"""

from __future__ import annotations

from absl import app, flags, logging
from ml_collections import config_flags

from simvae_jax import checkpointing, cli, distributed, ownership, train

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs.")
_MODE = flags.DEFINE_enum(
    "mode",
    "train",
    ["train", "eval"],
    "train (resumes if workdir has checkpoints) or eval "
    "(evaluate the latest checkpoint only).",
)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    False,
    "Multi-process run: join the other processes first (auto-detected on TPU "
    "pod slices and SLURM; or give the three flags below).",
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address",
    None,
    "HOST:PORT of process 0 (implies --distributed).",
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Number of processes (implies --distributed)."
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index (implies --distributed)."
)
flags.mark_flags_as_required(["config", "workdir"])

# Errors about the run's surroundings (another run owns the workdir, a
# checkpoint could not be written): one line, no traceback to offer.
RUN_ERRORS = (ownership.WorkdirInUse, checkpointing.CheckpointWriteError)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
  explicit = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if _DISTRIBUTED.value or any(v is not None for v in explicit):
    distributed.initialize(*explicit)
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _MODE.value)


def run() -> None:
  """The command line, with its one-line errors (``cli.run``)."""
  cli.run(main, quiet_errors=RUN_ERRORS)


if __name__ == "__main__":
  run()
