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

import time

import jax
import tqdm
from etils import epath

from simvae_jax import (
    compilation_cache,
    ownership,
    posthoc_decoder,
    writers,
)
from simvae_jax.data import pipeline
from simvae_jax import workdir as run_dir
from simvae_jax.evaluator import Evaluator
from simvae_jax.experiment import Experiment, num_train_steps, validate_config
from simvae_jax.preemption import Preemption
from simvae_jax.step_loop import (
    Dispatcher,
    LoopParts,
    NonFiniteError,
    compile_before_training,
    dispatch_ends,
    run_steps,
)
from simvae_jax.train_state import TrainState

__all__ = [
    "Experiment",
    "num_train_steps",
    "validate_config",
    "Evaluator",
    "NonFiniteError",
    "Preemption",
    "dispatch_ends",
    "LoopParts",
    "run_steps",
    "train",
    "train_and_evaluate",
    "restore_latest",
]


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
        parts = LoopParts(
            iterator,
            dispatcher,
            checkpointer,
            writer,
            preemption,
            bar,
            evaluator,
            lock,
        )
        state = run_steps(experiment, state, parts)
      # Nothing was trained (the random encoder): save its initial state.
      if checkpointer.latest_step() is None:
        checkpointer.save(total, state, iterator)
    finally:  # also on errors: finish pending saves, flush the logs
      checkpointer.close()
      if own_writer:
        writer.close()
  return state


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
