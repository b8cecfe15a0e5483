"""Orbax checkpoints of the train state and every process's data-iterator position.

Checkpoints are written collectively by all processes (Orbax); each process's
grain iterator state goes to its own ``process_<i>-of-<n>.json`` (grain's Orbax
handler), so a multi-host run resumes every slice where it stopped. Paths are
``etils.epath`` paths, so ``gs://`` buckets work.

Saves are asynchronous: a save that fails (no space, permission revoked) is
reported at the next save or at ``close`` as a ``CheckpointWriteError`` naming
its step, the reason and the last good checkpoint. Retention (keep the newest
``max_to_keep``) runs here, not in Orbax, and only once the newest save is
known to be complete, so a failed save never costs an older checkpoint.

A latest checkpoint that cannot be read (truncated or corrupt files) is
reported and the newest readable one is used instead; the unreadable one is
moved aside to ``<step>.unreadable`` (never deleted), so the resumed run can
write that step again. A ``read_only`` checkpointer (``--mode=eval``,
``simvae_jax.load``) writes nothing: it skips such a checkpoint instead.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from simvae_jax.train_state import TrainState


def _drop_read_only_notice(record: logging.LogRecord) -> bool:
  """A logging filter: False for Orbax's notice of a read-only manager."""
  return not record.getMessage().startswith("Given directory is read only")


class CheckpointWriteError(OSError):
  """A checkpoint could not be written; older checkpoints are intact."""


def _reason(error: Exception) -> str:
  """A short reason for a failed write: the operating system's message when
  the error carries one (tensorstore embeds ``os_error_code='N'``)."""
  code = getattr(error, "errno", None)
  match = re.search(r"os_error_code='?(\d+)", str(error))
  if match:
    code = int(match.group(1))
  if code:
    return f"{os.strerror(code)} (errno {code})"
  return f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"


class Cadence:
  """When a checkpoint is due: every ``steps`` steps (0: not by count) or
  ``minutes`` after the previous save (0: not by time), whichever comes
  first. Time is read at log steps only, by process 0, and shared with the
  other processes there (one broadcast per log interval, none per step), so
  every process saves at the same steps."""

  def __init__(self, steps: int, minutes: float):
    self.steps, self.seconds = steps, minutes * 60
    self._last = time.monotonic()

  def due(self, step: int, at_log: bool) -> bool:
    if self.steps and step % self.steps == 0:
      return True
    if not (self.seconds and at_log):
      return False
    late = time.monotonic() - self._last >= self.seconds
    if jax.process_count() > 1:
      late = bool(multihost_utils.broadcast_one_to_all(np.int32(late)))
    return late

  def saved(self) -> None:
    self._last = time.monotonic()


def _stored(state: TrainState) -> dict:
  """The state as checkpoints store it: its fields by name, leaving out an
  empty ``online_probe`` (so a run without the online probe has the layout
  of checkpoints written before it existed, and reads them)."""
  fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
  if not fields["online_probe"]:
    del fields["online_probe"]
  return fields


def _key_tokens(path) -> tuple:
  """A pytree key path as plain keys (dict keys, attribute names, indices),
  the way checkpoint metadata names a leaf."""
  return tuple(
      getattr(key, "key", getattr(key, "name", getattr(key, "idx", key)))
      for key in path
  )


def _restore_template(directory: epath.Path, stored: dict):
  """(template, select): what to restore the checkpoint in ``directory``
  with, and the function that gives ``stored``'s tree from what it restores.

  A checkpoint holding leaves the state no longer has (a part that left the
  state: the discriminative methods' post-hoc decoder, with its optimiser
  moments, before version 0.1.1) is read whole, by the paths its metadata
  names, and those leaves are dropped; otherwise ``stored`` itself.
  """
  identity = lambda restored: restored
  handler = ocp.StandardCheckpointHandler()
  on_disk = handler.metadata(directory / "state").tree
  disk_keys = {
      _key_tokens(path)
      for path, _ in jax.tree_util.tree_flatten_with_path(on_disk)[0]
  }
  wanted, treedef = jax.tree_util.tree_flatten_with_path(stored)
  by_key = {_key_tokens(path): leaf for path, leaf in wanted}
  if set(by_key) == disk_keys or not set(by_key) < disk_keys:
    return stored, identity
  departed = jax.tree.leaves(stored)[0].sharding  # replicated, like the rest

  def leaf_template(path, leaf):
    key = _key_tokens(path)
    if key in by_key:
      return by_key[key]
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=departed)

  template = jax.tree_util.tree_map_with_path(leaf_template, on_disk)

  def select(restored):
    flat = {
        _key_tokens(path): value
        for path, value in jax.tree_util.tree_flatten_with_path(restored)[0]
    }
    return jax.tree_util.tree_unflatten(treedef, [flat[key] for key in by_key])

  return template, select


class Checkpointer:
  """Saves ``{state, data}`` under ``directory`` when asked; keeps the newest
  ``max_to_keep``."""

  def __init__(
      self,
      directory: str,
      max_to_keep: int = 3,
      read_only: bool = False,
  ):
    if max_to_keep <= 0:
      raise ValueError(f"max_checkpoints must be > 0, got {max_to_keep}")
    self.max_to_keep, self.read_only = max_to_keep, read_only
    # Orbax needs absolute paths; object-store URLs (gs://...) already are.
    if "://" not in str(directory):
      directory = os.path.abspath(directory)
    self.directory = epath.Path(directory)
    self._options = ocp.CheckpointManagerOptions(
        create=not read_only,
        read_only=read_only,
        save_interval_steps=0 if read_only else 1,
    )
    self._manager = self._open()
    self._pending = None  # the step of a save not yet known to be complete
    self._failed = False

  def _open(self) -> ocp.CheckpointManager:
    # Orbax warns "Given directory is read only" at every read-only open;
    # ours are read-only on purpose, and the warning read as a fault to users.
    absl_logger = logging.getLogger("absl")
    absl_logger.addFilter(_drop_read_only_notice)
    try:
      return ocp.CheckpointManager(self.directory, options=self._options)
    finally:
      absl_logger.removeFilter(_drop_read_only_notice)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def complete_steps(self) -> list[int]:
    """Steps whose checkpoints are complete on disk (in-progress and failed
    saves are temporary folders, not listed)."""
    if not self.directory.exists():
      return []
    return sorted(
        int(p.name) for p in self.directory.iterdir() if p.name.isdigit()
    )

  def save(self, step: int, state: TrainState, iterator) -> None:
    """Starts saving ``step`` (asynchronously). Raises
    ``CheckpointWriteError`` if this save or the previous one failed."""
    self._confirm_pending()
    try:
      self._manager.save(
          step,
          force=True,
          args=ocp.args.Composite(
              state=ocp.args.StandardSave(_stored(state)),
              data=grain.checkpoint.CheckpointSave(iterator),
          ),
      )
    except Exception as error:  # Orbax/tensorstore raise many types
      raise self._write_error(step, error) from error
    self._pending = step

  def _confirm_pending(self) -> None:
    """Waits for the pending save; once it is complete, deletes checkpoints
    beyond the newest ``max_to_keep``."""
    if self._pending is None:
      return
    step, self._pending = self._pending, None
    try:
      self._manager.wait_until_finished()
    except Exception as error:  # Orbax/tensorstore raise many types
      raise self._write_error(step, error) from error
    for old in self._manager.all_steps()[: -self.max_to_keep]:
      self._manager.delete(old)

  def _write_error(self, step: int, error: Exception) -> CheckpointWriteError:
    self._failed = True
    good = [s for s in self.complete_steps() if s != step]
    where = (
        f"the last good checkpoint is step {good[-1]} in {self.directory}"
        if good
        else "no checkpoint was written before it"
    )
    return CheckpointWriteError(
        f"The checkpoint of step {step} could not be written "
        f"({_reason(error)}); {where}. Nothing older was deleted: fix the "
        f"cause (disk space, permissions) and re-run the same command to "
        f"resume."
    )

  def restore(self, abstract: TrainState, iterator=None):
    """Restores the state (shapes, dtypes and shardings of ``abstract``, with
    ``jax.ShapeDtypeStruct`` leaves) and, if given, the iterator's position,
    from the newest readable checkpoint. Returns (state, step)."""
    steps = self.complete_steps()
    while steps:
      step = steps.pop()
      try:
        template, select = _restore_template(
            self.directory / str(step), _stored(abstract)
        )
        args = {"state": ocp.args.StandardRestore(template)}
        if iterator is not None:
          args["data"] = grain.checkpoint.CheckpointRestore(iterator)
        restored = self._manager.restore(step, args=ocp.args.Composite(**args))
        return abstract.replace(**select(restored["state"])), step
      except Exception as error:  # Orbax/tensorstore raise many types
        self._report_unreadable(step, error)
        if not self.read_only:
          self._set_aside(step)
    raise FileNotFoundError(f"No readable checkpoint in {self.directory}")

  def _report_unreadable(self, step: int, error: Exception) -> None:
    action = "skipped" if self.read_only else f"moved to {step}.unreadable"
    message = (
        f"Checkpoint {self.directory / str(step)} cannot be read "
        f"({type(error).__name__}: {' '.join(str(error).split())[:200]}); "
        f"{action}, using the previous one."
    )
    logging.warning(message)
    print(message, flush=True)

  def _set_aside(self, step: int) -> None:
    """Moves an unreadable checkpoint to ``<step>.unreadable`` and reopens."""
    source = self.directory / str(step)
    target = self.directory / f"{step}.unreadable"
    suffix = 1
    while target.exists():
      target, suffix = self.directory / f"{step}.unreadable{suffix}", suffix + 1
    self._manager.close()
    if jax.process_index() == 0:
      source.rename(target)
    multihost_utils.sync_global_devices(f"set aside checkpoint {step}")
    self._manager = self._open()

  def close(self) -> None:
    """Waits for the pending save (raising if it failed) and releases the
    manager."""
    try:
      self._confirm_pending()
    finally:
      try:
        self._manager.close()
      except Exception:  # pylint: disable=broad-except
        if not self._failed:  # a failed save was already reported
          raise
