"""Orbax checkpoints of the train state and the data iterator's position."""

from __future__ import annotations

import os

import orbax.checkpoint as ocp

from simvae_jax.train_state import TrainState


class Checkpointer:
  """Saves ``{state, data}`` every ``every`` steps (and when forced) under
  ``directory``; keeps the newest ``max_to_keep``."""

  def __init__(self, directory: str, every: int, max_to_keep: int = 3):
    if every <= 0:
      raise ValueError(f"checkpoint_every must be > 0, got {every}")
    self.every = every
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, save_interval_steps=every, create=True
        ),
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(
      self, step: int, state: TrainState, data_state: dict, force: bool = False
  ) -> bool:
    """Saves at multiples of ``every`` or when ``force``; returns whether it did."""
    return self._manager.save(
        step,
        force=force,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state),
        ),
    )

  def restore(self, abstract: TrainState, step: int | None = None):
    """Restores (state, data_state) at ``step`` (default latest) with the shapes,
    dtypes and shardings of ``abstract`` (``jax.ShapeDtypeStruct`` leaves)."""
    step = self.latest_step() if step is None else step
    restored = self._manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract),
            data=ocp.args.JsonRestore(),
        ),
    )
    return restored["state"], restored["data"]

  def close(self) -> None:
    """Waits for pending asynchronous saves and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()
