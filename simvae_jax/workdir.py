"""A run's directory: its recorded config and whether a new config may continue it.

``config.json`` records the resolved config of the run in the directory. A
restarted run continues from the latest checkpoint only when its config differs
in fields that do not change what was trained so far (``RESUMABLE_CHANGES``:
the schedule length, logging, checkpointing and evaluation settings);
anything else (method, J, model, data, optimiser, seed, ...) is refused with the
differing keys named, instead of silently mixing two runs.

Paths are ``etils.epath`` paths, so a workdir may be a ``gs://`` bucket.
"""

from __future__ import annotations

import json

from etils import epath

CONFIG_FILE = "config.json"
CHECKPOINTS = "checkpoints"
# Dotted config keys (or prefixes ending in '.') a continued run may change.
RESUMABLE_CHANGES = (
    "num_epochs",
    "num_steps",
    "log_every",
    "steps_per_dispatch",
    "checkpoint_every",
    "checkpoint_every_minutes",
    "compilation_cache_dir",
    "max_checkpoints",
    "lock_stale_minutes",
    "skip_nonfinite",
    "tensorboard",
    "data.cache_memory_gib",
    "data.cache_dir",
    "data.decode_workers",
    "eval.",
    "evals",
    "fid.",
)


def prepare(workdir: str, create: bool = True) -> None:
  """Raises a clear error if ``workdir`` cannot hold a run; creates it."""
  path = epath.Path(workdir)
  if path.exists() and not path.is_dir():
    raise ValueError(f"--workdir {workdir} is a file, not a directory")
  if create:
    path.mkdir(parents=True, exist_ok=True)


def has_checkpoint(workdir: str) -> bool:
  directory = epath.Path(workdir) / CHECKPOINTS
  return directory.is_dir() and any(
      path.name.isdigit() for path in directory.iterdir()
  )


def flatten(config: dict, prefix: str = "") -> dict:
  """{"a": {"b": 1}} -> {"a.b": 1}."""
  flat = {}
  for key, value in config.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def changed_keys(previous: dict, current: dict) -> list[str]:
  """Dotted keys of ``previous`` whose values differ in ``current`` (or that
  it lacks), except the resumable ones. Keys only ``current`` has are fields
  added to the package after the run began: the run had their defaults."""
  old, new = flatten(previous), flatten(current)
  resumable = lambda key: any(
      key == r or (r.endswith(".") and key.startswith(r))
      for r in RESUMABLE_CHANGES
  )
  return sorted(
      key
      for key in old
      if not resumable(key) and old[key] != new.get(key, _MISSING)
  )


_MISSING = object()


def resolved(config) -> dict:
  """The config as plain JSON values (what config.json holds)."""
  return json.loads(config.to_json_best_effort())


def check_resumable(config, workdir: str) -> None:
  """Raises if ``workdir`` holds a run whose config differs from ``config`` in
  more than ``RESUMABLE_CHANGES``."""
  path = epath.Path(workdir) / CONFIG_FILE
  if not (path.exists() and has_checkpoint(workdir)):
    return
  changed = changed_keys(json.loads(path.read_text()), resolved(config))
  if changed:
    raise ValueError(
        f"{workdir} holds a run with a different config ({', '.join(changed)}); "
        f"its checkpoint cannot continue under the new one. Use another "
        f"--workdir, or delete this one to start over. Only "
        f"{', '.join(RESUMABLE_CHANGES)} may change when a run continues."
    )


def write_config(config, workdir: str) -> None:
  (epath.Path(workdir) / CONFIG_FILE).write_text(
      config.to_json_best_effort(indent=2, sort_keys=True)
  )


RUN_FILE = "run.json"


def write_run_info(workdir: str, image_shape, num_classes: int = 0) -> None:
  """What loading the run needs besides its config: the image shape and
  (with the online probe, whose state the checkpoints hold) the number of
  classes."""
  info = {"image_shape": list(image_shape)}
  if num_classes:
    info["num_classes"] = int(num_classes)
  (epath.Path(workdir) / RUN_FILE).write_text(json.dumps(info))


def read_run_info(workdir: str) -> dict:
  path = epath.Path(workdir) / RUN_FILE
  if not path.exists():
    raise FileNotFoundError(
        f"{workdir} holds no finished run ({RUN_FILE} missing)"
    )
  return json.loads(path.read_text())
