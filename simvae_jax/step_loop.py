"""The training loop between checkpoints: K steps per dispatch, several
dispatches in flight, logs, non-finite checks, saves, periodic evaluations and
stops on a signal, all at dispatch boundaries (``run_steps``)."""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any

import jax
import numpy as np

from simvae_jax import checkpointing, train_step
from simvae_jax.preemption import report_interruption
from simvae_jax.train_state import TrainState


class NonFiniteError(FloatingPointError):
  """A step's loss or gradient was NaN or infinite."""


def compile_before_training(experiment, state: TrainState, needed: bool):
  """The jitted ``train_steps`` and, when steps will run, its program for a
  full dispatch compiled ahead of time (so that the progress bar's rate and
  ETA exclude compilation): ``(jitted, compiled or None)``."""
  steps_fn = experiment.compile_steps()
  if not needed:
    return steps_fn, None
  config = experiment.config
  per_dispatch = config.steps_per_dispatch
  batches = train_step.abstract_batches(
      per_dispatch,
      config.batch_size,
      experiment.image_shape,
      experiment.mesh,
      labels=experiment.monitor is not None,
  )
  started = time.time()
  compiled = steps_fn.lower(state, batches, np.bool_(True)).compile()
  if jax.process_index() == 0:
    print(
        f"compiled the train step in {time.time() - started:.1f}s", flush=True
    )
  return steps_fn, compiled


class Dispatcher:
  """Runs dispatches of K steps: the ahead-of-time program for full ones,
  the jitted function (compiled on first use) for a shorter one (the run's
  last steps, or realigning a resumed run to multiples of K)."""

  def __init__(self, steps_fn, compiled, per_dispatch: int):
    self.steps_fn, self.compiled = steps_fn, compiled
    self.per_dispatch = per_dispatch

  def __call__(self, state, batches, diagnose: bool):
    count = batches["image"].shape[0]
    full = count == self.per_dispatch and self.compiled is not None
    fn = self.compiled if full else self.steps_fn
    return fn(state, batches, np.bool_(diagnose))


def _nonfinite_error(step: int, metrics: dict, checkpointer) -> NonFiniteError:
  bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
  values = ", ".join(
      f"{k}={v}" for k, v in {**bad, **metrics}.items() if k != "finite"
  )
  latest = checkpointer.latest_step()
  where = (
      f"the last good checkpoint is step {latest} in {checkpointer.directory} "
      "(re-running the same command resumes from it)"
      if latest is not None
      else "no checkpoint was written before it"
  )
  return NonFiniteError(
      f"Non-finite loss or gradient at step {step} ({', '.join(bad)} not "
      f"finite): {values}. No checkpoint was written after it; {where}. "
      f"--config.skip_nonfinite=True skips such updates instead."
  )


class _Flags:
  """Each dispatch's ``finite`` flags kept on the device until the next log
  or checkpoint, so checking them costs one small transfer per interval; the
  other metrics of a step are fetched only if it was not finite."""

  def __init__(self):
    self.pending, self.skipped = [], 0

  def add(self, first_step: int, metrics) -> None:
    self.pending.append((first_step, metrics))

  def check(self, skip_nonfinite: bool, checkpointer) -> None:
    flags = jax.device_get([m["finite"] for _, m in self.pending])
    for (first_step, metrics), finite in zip(self.pending, flags):
      for offset in np.flatnonzero(np.asarray(finite) == 0):
        if not skip_nonfinite:
          values = jax.device_get(metrics)
          values = {k: float(v[offset]) for k, v in values.items()}
          raise _nonfinite_error(first_step + int(offset), values, checkpointer)
        self.skipped += 1
    self.pending = []


class _Progress:
  """Advances the progress bar when a dispatch has finished on the devices
  rather than when it was dispatched: with asynchronous dispatch the host
  runs ahead, which made the first rate and ETA far too optimistic. Up to
  ``max_in_flight`` dispatches are queued ahead of the devices, so neither
  waits for the other on a fast device (the host prepares and dispatches the
  next ones while the current ones run); the host blocks only on the oldest
  once that many are queued."""

  def __init__(self, bar, max_in_flight: int = 3):
    self.bar, self.max_in_flight = bar, max_in_flight
    self.in_flight = collections.deque()

  def dispatched(self, metrics, steps: int) -> None:
    self.in_flight.append((metrics["loss"], steps))
    while len(self.in_flight) > self.max_in_flight:
      self._retire()

  def finish(self) -> None:
    """Waits for every dispatched step (before logs, saves, evaluations)."""
    while self.in_flight:
      self._retire()

  def _retire(self) -> None:
    loss, steps = self.in_flight.popleft()
    jax.block_until_ready(loss)
    self.bar.update(steps)


def dispatch_ends(start: int, total: int, per_dispatch: int):
  """The last step of each dispatch after step ``start``: multiples of
  ``per_dispatch`` (a resumed run realigns with a shorter first dispatch)
  and ``total``."""
  step = start
  while step < total:
    step = min(total, (step // per_dispatch + 1) * per_dispatch)
    yield step


@dataclasses.dataclass
class LoopParts:
  """What ``run_steps`` drives around the train state: the batch
  ``iterator``, the ``dispatcher`` (K steps per call), the ``checkpointer``,
  the metric ``writer``, the ``preemption`` watch, the progress ``bar``, the
  periodic ``evaluator`` (None: no evaluation during training) and the
  workdir's ownership ``lock`` (None: not checked before saves)."""

  iterator: Any
  dispatcher: Dispatcher
  checkpointer: Any
  writer: Any
  preemption: Any
  bar: Any
  evaluator: Any = None
  lock: Any = None


def run_steps(experiment, state, parts: LoopParts) -> TrainState:
  """Steps from ``state.step + 1`` to the end (or a signal), K per dispatch:
  logs, checks for non-finite steps before each log and save, checkpoints,
  evaluates, all between dispatches."""
  config, total = experiment.config, experiment.total_steps
  eval_every = config.eval.every_steps if parts.evaluator is not None else 0
  flags, progress = _Flags(), _Progress(parts.bar)
  cadence = checkpointing.Cadence(
      config.checkpoint_every, config.checkpoint_every_minutes
  )
  first = int(state.step) + 1
  for last in dispatch_ends(first - 1, total, config.steps_per_dispatch):
    log = last % config.log_every == 0 or last == total
    # Every step's sync point is passed (a multi-process stop is agreed on a
    # step number); the run stops at the end of the dispatch holding it.
    interrupted = any(
        [parts.preemption.requested(s) for s in range(first, last + 1)]
    )
    save = cadence.due(last, log) or last == total or interrupted
    batches = train_step.stack_batches(
        [next(parts.iterator) for _ in range(first, last + 1)],
        experiment.mesh,
        labels=experiment.monitor is not None,
    )
    state, metrics = parts.dispatcher(state, batches, diagnose=log or save)
    progress.dispatched(metrics, last - first + 1)
    flags.add(first, metrics)
    first = last + 1
    if log or save:
      progress.finish()
      flags.check(config.skip_nonfinite, parts.checkpointer)
    if log:
      values = {k: float(v[-1]) for k, v in jax.device_get(metrics).items()}
      del values["finite"]
      parts.writer.write_scalars(
          last, {**values, "nonfinite_steps": flags.skipped}
      )
      flags.skipped = 0
      parts.bar.set_postfix(loss=f"{values['loss']:.2f}")
    if save:
      if parts.lock is not None:
        parts.lock.check()
      parts.checkpointer.save(last, state, parts.iterator)
      cadence.saved()
    if interrupted:
      parts.preemption.stopped_at = last
      report_interruption(parts.preemption.signal, last, parts.checkpointer)
      break
    if eval_every and last % eval_every == 0 and last < total:
      progress.finish()
      parts.evaluator(state.params, state.model_state, last, state.online_probe)
  return state
