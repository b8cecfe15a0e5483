"""Training and evaluation of one run: ``train_and_evaluate(config, workdir)``.

Outputs in ``workdir`` (a stable contract): ``config.json``, ``run.json``,
``metrics.jsonl``, ``checkpoints/``, ``reconstructions.png``, ``samples.png``
(generative methods only), ``latents.png``, ``eval.json`` and
``eval_history.jsonl`` (and ``tensorboard/`` with ``--config.tensorboard``;
``posthoc_decoder.msgpack`` for discriminative methods). Only process 0 writes them; checkpoints are written
by all processes together. Re-running with the same workdir resumes from the
latest readable checkpoint.

Faults: SIGTERM or SIGINT stops the run after the current step with a
checkpoint (exit 0; the same command resumes). A non-finite loss or gradient
stops it with an error naming the step, the offending values and the last good
checkpoint (no checkpoint is written after such a step), unless
``skip_nonfinite`` skips those updates and counts them.
"""

from __future__ import annotations

import collections
import os
import signal
import time

import jax
import numpy as np
import tqdm
from etils import epath
from jax.experimental import multihost_utils

from simvae_jax import (
    checkpointing,
    compilation_cache,
    ownership,
    posthoc_decoder,
    train_step,
    writers,
)
from simvae_jax.data import pipeline
from simvae_jax import workdir as run_dir
from simvae_jax.evaluator import Evaluator
from simvae_jax.experiment import Experiment, num_train_steps, validate_config
from simvae_jax.train_state import TrainState

__all__ = [
    "Experiment",
    "num_train_steps",
    "validate_config",
    "Evaluator",
    "train",
    "train_and_evaluate",
    "restore_latest",
]


class NonFiniteError(FloatingPointError):
  """A step's loss or gradient was NaN or infinite."""


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


def compile_before_training(
    experiment: Experiment, state: TrainState, needed: bool
):
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


def train(
    experiment: Experiment,
    workdir: str,
    evaluator=None,
    writer=None,
    preemption: Preemption | None = None,
) -> TrainState:
  """Trains (resuming from the latest readable checkpoint in workdir) and
  returns the final state, or the state at which a signal stopped it
  (``preemption.stopped_at`` is then set). Checkpoints every
  ``checkpoint_every`` steps or ``checkpoint_every_minutes`` (whichever is
  due first) and at the end, and calls ``evaluator(params,
  model_state, step, online_probe)`` every ``eval.every_steps`` steps (if >
  0) before the last."""
  config = experiment.config
  run_dir.prepare(workdir)
  with ownership.owned(workdir, config.lock_stale_minutes) as lock:
    own_writer = writer is None
    if own_writer:
      writer, _ = writers.make_writers(workdir, config.tensorboard)
    preemption = preemption or Preemption()
    iterator = pipeline.make_train_iterator(experiment.train_dataset())
    checkpointer = experiment.checkpointer(workdir)
    if checkpointer.latest_step() is not None:
      state, _ = checkpointer.restore(experiment.abstract_state(), iterator)
    else:
      state = experiment.initial_state()
    start, total = int(state.step), experiment.total_steps
    writer.drop_after(start)
    if evaluator is not None:
      evaluator.resume(start)
    dispatcher = Dispatcher(
        *compile_before_training(experiment, state, start < total),
        config.steps_per_dispatch,
    )
    bar = tqdm.tqdm(
        total=total,
        initial=start,
        unit="step",
        dynamic_ncols=True,
        mininterval=2.0,
        desc=f"train ({config.batch_size * config.num_views} views/step)",
        disable=jax.process_index() != 0,
    )
    try:
      with bar, preemption:
        state = run_steps(
            experiment,
            state,
            iterator,
            dispatcher,
            checkpointer,
            writer,
            evaluator,
            preemption,
            bar,
            lock,
        )
      # Nothing was trained (the random encoder): save its initial state.
      if checkpointer.latest_step() is None:
        checkpointer.save(total, state, iterator)
    finally:  # also on errors: finish pending saves, flush the logs
      checkpointer.close()
      if own_writer:
        writer.close()
  return state


def dispatch_ends(start: int, total: int, per_dispatch: int):
  """The last step of each dispatch after step ``start``: multiples of
  ``per_dispatch`` (a resumed run realigns with a shorter first dispatch)
  and ``total``."""
  step = start
  while step < total:
    step = min(total, (step // per_dispatch + 1) * per_dispatch)
    yield step


def run_steps(
    experiment,
    state,
    iterator,
    dispatcher,
    checkpointer,
    writer,
    evaluator,
    preemption,
    bar,
    lock,
) -> TrainState:
  """Steps from ``state.step + 1`` to the end (or a signal), K per dispatch:
  logs, checks for non-finite steps before each log and save, checkpoints,
  evaluates, all between dispatches."""
  config, total = experiment.config, experiment.total_steps
  eval_every = config.eval.every_steps if evaluator is not None else 0
  flags, progress = _Flags(), _Progress(bar)
  cadence = checkpointing.Cadence(
      config.checkpoint_every, config.checkpoint_every_minutes
  )
  first = int(state.step) + 1
  for last in dispatch_ends(first - 1, total, config.steps_per_dispatch):
    log = last % config.log_every == 0 or last == total
    # Every step's sync point is passed (a multi-process stop is agreed on a
    # step number); the run stops at the end of the dispatch holding it.
    interrupted = any([preemption.requested(s) for s in range(first, last + 1)])
    save = cadence.due(last, log) or last == total or interrupted
    batches = train_step.stack_batches(
        [next(iterator) for _ in range(first, last + 1)],
        experiment.mesh,
        labels=experiment.monitor is not None,
    )
    state, metrics = dispatcher(state, batches, diagnose=log or save)
    progress.dispatched(metrics, last - first + 1)
    flags.add(first, metrics)
    first = last + 1
    if log or save:
      progress.finish()
      flags.check(config.skip_nonfinite, checkpointer)
    if log:
      values = {k: float(v[-1]) for k, v in jax.device_get(metrics).items()}
      del values["finite"]
      writer.write_scalars(last, {**values, "nonfinite_steps": flags.skipped})
      flags.skipped = 0
      bar.set_postfix(loss=f"{values['loss']:.2f}")
    if save:
      if lock is not None:
        lock.check()
      checkpointer.save(last, state, iterator)
      cadence.saved()
    if interrupted:
      preemption.stopped_at = last
      _report_interruption(preemption.signal, last, checkpointer)
      break
    if eval_every and last % eval_every == 0 and last < total:
      progress.finish()
      evaluator(state.params, state.model_state, last, state.online_probe)
  return state


def _report_interruption(number, step: int, checkpointer) -> None:
  if jax.process_index() != 0:
    return
  name = signal.Signals(number).name if number is not None else "a signal"
  print(
      f"\n{name} received: stopped after step {step} with a checkpoint in "
      f"{checkpointer.directory / str(step)}. Re-run the same command (same "
      f"--workdir) to resume.",
      flush=True,
  )


def restore_latest(experiment: Experiment, workdir: str) -> TrainState:
  """The latest readable checkpoint of ``workdir``, read only: creates,
  moves and deletes nothing (another run may be training in it)."""
  if not run_dir.has_checkpoint(workdir):
    raise FileNotFoundError(
        f"No checkpoint in {workdir}/checkpoints to evaluate "
        f"(train first, or check --workdir)."
    )
  checkpointer = experiment.checkpointer(workdir, read_only=True)
  state, _ = checkpointer.restore(experiment.abstract_state())
  checkpointer.close()
  return state


def evaluate_final(experiment, evaluator, state, workdir: str) -> dict:
  """The end of a run: a discriminative method's post-hoc decoder (trained,
  saved in workdir), the images, and the final evaluation's results; the
  decoder's time is in the results' ``seconds``."""
  params, model_state = state.params, state.model_state
  if not experiment.method.generative:
    with evaluator.timer("posthoc_decoder"):
      params, model_state, mse = posthoc_decoder.train_posthoc_decoder(
          experiment, params, model_state
      )
    if jax.process_index() == 0:
      print(f"post-hoc decoder: final training MSE {mse:.4f}")
      posthoc_decoder.save(workdir, params, model_state)
  return evaluator(
      params,
      model_state,
      int(state.step),
      state.online_probe,
      final=True,
      reconstruction=True,
  )


def train_and_evaluate(config, workdir: str, mode: str = "train") -> dict:
  """``mode='train'``: train (or resume) then evaluate, owning ``workdir``
  throughout (another run on it is refused); ``'eval'``: evaluate the latest
  checkpoint of workdir without training (also while another run trains in
  it). Returns the final results (``{"step": ..., "interrupted": True}`` when
  a signal stopped training)."""
  if mode not in ("train", "eval"):
    raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
  run_dir.prepare(workdir, create=False)
  compilation_cache.enable(config.compilation_cache_dir)
  if mode == "eval":
    owner = ownership.live_owner(workdir, config.lock_stale_minutes)
    if owner and jax.process_index() == 0:
      print(
          f"{workdir} is being trained ({owner}): evaluating its latest "
          "complete checkpoint, writing no training state.",
          flush=True,
      )
    return _run(config, workdir, mode)
  run_dir.prepare(workdir, create=jax.process_index() == 0)
  with ownership.owned(workdir, config.lock_stale_minutes):
    run_dir.check_resumable(config, workdir)
    return _run(config, workdir, mode)


def _outputs(workdir: str) -> list[str]:
  """The run's files a user looks at, as far as this run wrote them."""
  names = (
      "config.json",
      "metrics.jsonl",
      "checkpoints/",
      "reconstructions.png",
      "samples.png",
      "latents.png",
      "eval.json",
      "eval_history.jsonl",
  )
  path = epath.Path(workdir)
  return [name for name in names if (path / name.rstrip("/")).exists()]


def _run(config, workdir: str, mode: str) -> dict:
  """train_and_evaluate once the workdir is checked (and, to train, owned)."""
  started = time.time()
  experiment = Experiment.from_config(config)
  main = jax.process_index() == 0
  if main:
    for network, count in experiment.parameter_counts().items():
      print(f"{network}: {count} parameters", flush=True)
  if mode == "train":
    if main:
      run_dir.write_config(config, workdir)
      run_dir.write_run_info(
          workdir,
          experiment.image_shape,
          experiment.monitor[0] if experiment.monitor else 0,
      )
    writer, summaries = writers.make_writers(workdir, config.tensorboard)
    evaluator = Evaluator(experiment, workdir, summaries)
    preemption = Preemption()
    state = train(experiment, workdir, evaluator, writer, preemption)
    if preemption.stopped_at is not None:
      writer.close()
      return {"step": preemption.stopped_at, "interrupted": True}
  else:
    state = restore_latest(experiment, workdir)
    writer, summaries = writers.make_writers(workdir, config.tensorboard)
    evaluator = Evaluator(experiment, workdir, summaries)
  results = evaluate_final(experiment, evaluator, state, workdir)
  writer.close()
  if main:
    print(
        f"\nOutputs in {workdir}: {', '.join(_outputs(workdir))} (load them "
        f"in Python: simvae_jax.load(workdir)) ({time.time() - started:.0f}s)"
    )
  return results
