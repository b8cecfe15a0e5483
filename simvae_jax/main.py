"""Command line: python -m simvae_jax.main --config=configs/digits.py --workdir=DIR

Any config field can be overridden, e.g. ``--config.seed=1 --config.num_steps=100``.
Mistakes (an unknown method or config key, a missing data file, a batch that
does not split over the devices, ...) end in one line saying what is wrong and
a non-zero exit; ``--verbose`` shows the traceback instead.
"""

from __future__ import annotations

import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from simvae_jax import checkpointing, distributed, ownership, train

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
_VERBOSE = flags.DEFINE_bool(
    "verbose", False, "Show the full traceback of errors."
)
flags.mark_flags_as_required(["config", "workdir"])

# Errors that describe a problem with the user's config, data or workdir.
USER_ERRORS = (ValueError, KeyError, OSError, FloatingPointError)
# Errors about the run's surroundings (another run owns the workdir, a
# checkpoint could not be written): one line, no traceback to offer.
RUN_ERRORS = (ownership.WorkdirInUse, checkpointing.CheckpointWriteError)


def one_line(error: BaseException) -> str:
  """The error's message on one line (KeyError's repr quoting removed)."""
  message = (
      error.args[0] if isinstance(error, KeyError) and error.args else error
  )
  text = " ".join(str(message).split())
  return text or type(error).__name__


def fail(message: str, hint: bool = True) -> None:
  print(f"error: {message}", file=sys.stderr)
  if hint and "--verbose" not in sys.argv:
    print("(run with --verbose for the traceback)", file=sys.stderr)
  sys.exit(1)


def describe_config_error(error: BaseException) -> str:
  """One line for an error raised while parsing --config flags.

  An unknown key arrives from ml_collections as a chain of KeyError and
  AttributeError whose messages quote each other; it is reported as the key
  and ml_collections' suggestion.
  """
  chain = []
  while error is not None and error not in chain:
    chain.append(error)
    error = error.__cause__ or error.__context__
  if isinstance(chain[0], (KeyError, AttributeError)):
    keys = [e.args[0] for e in chain if isinstance(e, KeyError) and e.args]
    text = " ".join(str(e) for e in chain).replace("\\", "")
    suggestion = re.search(r'Did you mean "([\w.]+)"', text)
    if keys:
      hint = f'; did you mean "{suggestion.group(1)}"?' if suggestion else ""
      return f'Unknown config key "{keys[-1]}"{hint}'
  # absl names the flag (useful for bad values) but, for a config file that
  # failed to load, embeds the traceback: then the original error is the news.
  if "Traceback" in str(chain[0]) or "config file" in str(chain[0]):
    return one_line(chain[-1])
  return one_line(chain[0])


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing with config errors (unknown keys or variants, bad
  values) reported in one line."""
  try:
    return flags.FLAGS(argv)
  except Exception as error:  # what a config file or override may raise
    if "--verbose" in argv:
      raise
    fail(describe_config_error(error))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
  try:
    explicit = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if _DISTRIBUTED.value or any(v is not None for v in explicit):
      distributed.initialize(*explicit)
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _MODE.value)
  except RUN_ERRORS as error:
    if _VERBOSE.value:
      raise
    fail(one_line(error), hint=False)
  except USER_ERRORS as error:
    if _VERBOSE.value:
      raise
    fail(one_line(error))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
