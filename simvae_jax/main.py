"""Command line: python -m simvae_jax.main --config=configs/digits.py --workdir=DIR

Any config field can be overridden, e.g. ``--config.seed=1 --config.num_steps=100``.
"""

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from simvae_jax import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"],
                          "train (resumes if workdir has checkpoints) or eval "
                          "(evaluate the latest checkpoint only).")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (multi-host "
    "runs on TPU pods, SLURM or with JAX_COORDINATOR_ADDRESS set).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
  if _DISTRIBUTED.value:
    jax.distributed.initialize()
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _MODE.value)


if __name__ == "__main__":
  app.run(main)
