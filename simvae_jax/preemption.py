"""Stopping a run cleanly on SIGTERM or SIGINT: after the current step (on
every process at the same step), with a checkpoint, and a message saying how
to resume."""

from __future__ import annotations

import os
import signal

import jax
from jax.experimental import multihost_utils


class Preemption:
  """Turns SIGTERM and SIGINT into a request to stop after the current step.

  A second SIGINT interrupts at once. ``stopped_at`` is the step after which
  training stopped (None if it ran to the end).

  In a multi-process run every process stops at the same step once any of
  them was signalled, without a collective per step: SIGTERM is left to JAX's
  preemption service (started by ``jax.distributed.initialize``), which agrees
  on the stop step through the coordination service in the background, so
  ``multihost_utils.reached_preemption_sync_point`` is a local check. SIGINT
  is handed to the same service as a SIGTERM to this process.
  """

  def __init__(self):
    self.signal = None
    self.stopped_at = None
    self._previous = {}
    self._shared = jax.process_count() > 1

  def __enter__(self):
    numbers = (signal.SIGINT,)
    if not self._shared:
      numbers += (signal.SIGTERM,)
    try:
      for number in numbers:
        self._previous[number] = signal.signal(number, self._handle)
    except ValueError:  # not the main thread: leave signals alone
      self._previous = {}
    return self

  def __exit__(self, *exc_info):
    for number, handler in self._previous.items():
      signal.signal(number, handler)

  def _handle(self, number, frame):
    del frame
    if self.signal is not None and number == signal.SIGINT:
      raise KeyboardInterrupt
    self.signal = number
    if self._shared:
      os.kill(os.getpid(), signal.SIGTERM)  # to JAX's preemption service

  def requested(self, step: int) -> bool:
    """Whether to stop after ``step``: called at every step, on every process."""
    if not self._shared:
      return self.signal is not None
    if multihost_utils.reached_preemption_sync_point(step):
      self.signal = self.signal or signal.SIGTERM
      return True
    return False


def report_interruption(number, step: int, checkpointer) -> None:
  if jax.process_index() != 0:
    return
  name = signal.Signals(number).name if number is not None else "a signal"
  print(
      f"\n{name} received: stopped after step {step} with a checkpoint in "
      f"{checkpointer.directory / str(step)}. Re-run the same command (same "
      f"--workdir) to resume.",
      flush=True,
  )
