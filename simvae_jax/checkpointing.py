"""Orbax checkpoints of the train state and every process's data-iterator position.

Checkpoints are written collectively by all processes (Orbax); each process's
grain iterator state goes to its own ``process_<i>-of-<n>.json`` (grain's Orbax
handler), so a multi-host run resumes every slice where it stopped. Paths are
``etils.epath`` paths, so ``gs://`` buckets work.

A latest checkpoint that cannot be read (truncated or corrupt files) is
reported and the newest readable one is used instead; the unreadable one is
moved aside to ``<step>.unreadable`` (never deleted), so the resumed run can
write that step again.
"""

from __future__ import annotations

import logging
import os

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from simvae_jax.train_state import TrainState


class Checkpointer:
  """Saves ``{state, data}`` every ``every`` steps (and when forced) under
  ``directory``; keeps the newest ``max_to_keep``."""

  def __init__(self, directory: str, every: int, max_to_keep: int = 3):
    if every <= 0:
      raise ValueError(f"checkpoint_every must be > 0, got {every}")
    self.every = every
    # Orbax needs absolute paths; object-store URLs (gs://...) already are.
    if "://" not in str(directory):
      directory = os.path.abspath(directory)
    self.directory = epath.Path(directory)
    self._options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, save_interval_steps=every, create=True
    )
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(self.directory, options=self._options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(
      self, step: int, state: TrainState, iterator, force: bool = False
  ) -> bool:
    """Saves at multiples of ``every`` or when ``force``; returns whether it did."""
    return self._manager.save(
        step,
        force=force,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(iterator),
        ),
    )

  def restore(self, abstract: TrainState, iterator=None):
    """Restores the state (shapes, dtypes and shardings of ``abstract``, with
    ``jax.ShapeDtypeStruct`` leaves) and, if given, the iterator's position,
    from the newest readable checkpoint. Returns (state, step)."""
    while (step := self.latest_step()) is not None:
      args = {"state": ocp.args.StandardRestore(abstract)}
      if iterator is not None:
        args["data"] = grain.checkpoint.CheckpointRestore(iterator)
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(**args))
        return restored["state"], step
      except Exception as error:  # Orbax/tensorstore raise many types
        self._set_aside(step, error)
    raise FileNotFoundError(f"No readable checkpoint in {self.directory}")

  def _set_aside(self, step: int, error: Exception) -> None:
    """Moves an unreadable checkpoint to ``<step>.unreadable`` and reopens."""
    source = self.directory / str(step)
    target = self.directory / f"{step}.unreadable"
    suffix = 1
    while target.exists():
      target, suffix = self.directory / f"{step}.unreadable{suffix}", suffix + 1
    message = (
        f"Checkpoint {source} cannot be read ({type(error).__name__}: "
        f"{' '.join(str(error).split())[:200]}); moved to {target}, resuming "
        "from the previous one."
    )
    logging.warning(message)
    print(message, flush=True)
    self._manager.close()
    if jax.process_index() == 0:
      source.rename(target)
    multihost_utils.sync_global_devices(f"set aside checkpoint {step}")
    self._manager = self._open()

  def close(self) -> None:
    """Waits for pending asynchronous saves and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()
