"""Training and evaluation of one run: ``train_and_evaluate(config, workdir)``.

Outputs in ``workdir`` (a stable contract): ``config.json``, ``metrics.jsonl``,
``checkpoints/``, ``reconstructions.png``, ``samples.png`` (generative methods
only) and ``eval.json``.
Re-running with the same workdir resumes from the latest checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import numpy as np
import tqdm

from simvae_jax import (
    checkpointing,
    methods,
    models,
    optimizers,
    outputs,
    posthoc_decoder,
    seeding,
    sharding,
    train_step,
)
from simvae_jax import workdir as run_dir
from simvae_jax.data import augment, pipeline, sources
from simvae_jax.evaluation import representations, suite
from simvae_jax.train_state import (
    TrainState,
    abstract_train_state,
    init_train_state,
)

# ----------------------------------------------------------------------------
# Set-up.
# ----------------------------------------------------------------------------


def validate_config(config) -> None:
  """Raises ValueError with a clear message for settings that cannot run."""
  if config.num_views < 1:
    raise ValueError(f"num_views (J) must be >= 1, got {config.num_views}")
  if config.batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
  if config.num_steps <= 0 and config.num_epochs <= 0:
    raise ValueError("Set num_steps > 0 or num_epochs > 0.")
  if config.log_every < 1:
    raise ValueError(f"log_every must be >= 1, got {config.log_every}")
  augment.validate_config(config.augment)
  optimizers.validate_config(config.optimizer)


def num_train_steps(config, num_examples: int) -> int:
  """``num_steps`` if positive, else ``num_epochs`` full epochs of batches."""
  if config.num_steps > 0:
    return int(config.num_steps)
  return int(
      config.num_epochs
      * pipeline.steps_per_epoch(
          num_examples, config.batch_size, jax.process_count()
      )
  )


@dataclasses.dataclass
class Experiment:
  """What a run needs, built once from the config."""

  config: object
  mesh: jax.sharding.Mesh
  train_source: object
  image_shape: tuple
  method: object
  optimizer: object
  schedule: object
  total_steps: int  # training steps of the run (0 for the random encoder)

  @classmethod
  def from_config(cls, config) -> "Experiment":
    validate_config(config)
    mesh = sharding.make_mesh()
    sharding.check_batch_size(config.batch_size, mesh)
    train_source = sources.load_source(config.data, "train")
    image_shape = tuple(np.shape(train_source[0]["image"]))
    augment.check_image_shape(config.augment, image_shape)
    method = methods.make_method(config, image_shape)
    total_steps = (
        num_train_steps(config, len(train_source)) if method.trainable else 0
    )
    optimizer, schedule = optimizers.make_optimizer(
        config.optimizer,
        total_steps,
        pipeline.steps_per_epoch(
            len(train_source), config.batch_size, jax.process_count()
        ),
    )
    return cls(
        config,
        mesh,
        train_source,
        image_shape,
        method,
        optimizer,
        schedule,
        total_steps,
    )

  def initial_state(self, seed: int | None = None) -> TrainState:
    """The state at step 0 of run ``seed`` (default: the config's)."""
    seed = self.config.seed if seed is None else seed
    return init_train_state(
        self.method, self.optimizer, self.image_shape, seed, self.mesh
    )

  def abstract_state(self) -> TrainState:
    """Shapes, dtypes and shardings of the state (checkpoint restore template)."""
    return abstract_train_state(
        self.method,
        self.optimizer,
        self.image_shape,
        self.config.seed,
        self.mesh,
    )

  def compile_step(self, mesh: jax.sharding.Mesh | None = None):
    """The jitted train step over ``mesh`` (default: the experiment's)."""
    return train_step.compile_train_step(
        self.method,
        self.optimizer,
        self.schedule,
        self.config.num_views,
        self.config.augment,
        self.mesh if mesh is None else mesh,
    )

  def parameter_counts(self) -> dict:
    """{"encoder <name>": count, ...} for each network of the method."""
    params = self.abstract_state().params
    names = {
        "encoder": self.config.model.encoder,
        "decoder": self.config.model.decoder,
        "head": "mlp",
    }
    return {
        f"{part} {names[part]}": models.count_parameters(params[part])
        for part in params
    }

  def checkpointer(self, workdir: str) -> checkpointing.Checkpointer:
    return checkpointing.Checkpointer(
        os.path.join(workdir, "checkpoints"),
        self.config.checkpoint_every,
        self.config.max_checkpoints,
    )


# ----------------------------------------------------------------------------
# Training loop.
# ----------------------------------------------------------------------------


def _check_finite(step: int, metrics: dict) -> None:
  bad = [name for name, value in metrics.items() if not np.isfinite(value)]
  if bad:
    raise FloatingPointError(f"Non-finite {bad} at step {step}: {metrics}")


def compile_before_training(
    experiment: Experiment, state: TrainState, needed: bool
):
  """The step compiled ahead of time (so that the progress bar's rate and ETA
  exclude compilation), or the jitted function when no step will run."""
  step_fn = experiment.compile_step()
  if not needed:
    return step_fn
  config = experiment.config
  batched = sharding.batch_sharded(experiment.mesh)
  batch = {
      "image": jax.ShapeDtypeStruct(
          (config.batch_size, *experiment.image_shape),
          np.uint8,
          sharding=batched,
      ),
      "label": jax.ShapeDtypeStruct(
          (config.batch_size,), np.int32, sharding=batched
      ),
  }
  started = time.time()
  compiled = step_fn.lower(state, batch).compile()
  print(f"compiled the train step in {time.time() - started:.1f}s", flush=True)
  return compiled


def train(experiment: Experiment, workdir: str, evaluator=None) -> TrainState:
  """Trains (resuming from the latest checkpoint in workdir) and returns the
  final state; checkpoints every ``checkpoint_every`` steps and at the end, and
  calls ``evaluator(params, model_state, step)`` every ``eval.every_steps``
  steps (if > 0) before the last."""
  config = experiment.config
  dataset = pipeline.make_train_dataset(
      experiment.train_source, config.batch_size, seed=config.seed
  )
  iterator = pipeline.make_train_iterator(dataset)
  checkpointer = experiment.checkpointer(workdir)
  if checkpointer.latest_step() is not None:
    state, data_state = checkpointer.restore(experiment.abstract_state())
    iterator.set_state(data_state)
  else:
    state = experiment.initial_state()
  start, total = int(state.step), experiment.total_steps
  log = outputs.JsonLinesLog(os.path.join(workdir, "metrics.jsonl"))
  log.drop_after(start)
  if evaluator is not None:
    evaluator.resume(start)
  step_fn = compile_before_training(experiment, state, start < total)
  rows = config.batch_size * config.num_views
  eval_every = config.eval.every_steps if evaluator is not None else 0
  with tqdm.tqdm(
      total=total,
      initial=start,
      unit="step",
      dynamic_ncols=True,
      mininterval=2.0,
      desc=f"train ({rows} views/step)",
  ) as bar:
    for step in range(start + 1, total + 1):
      batch = sharding.to_global_batch(next(iterator), experiment.mesh)
      state, metrics = step_fn(state, batch)
      if step % config.log_every == 0 or step == total:
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        _check_finite(step, metrics)
        log.write(step, metrics)
        bar.set_postfix(loss=f"{metrics['loss']:.2f}")
      if step % checkpointer.every == 0 or step == total:
        checkpointer.save(
            step, state, iterator.get_state(), force=step == total
        )
      if eval_every and step % eval_every == 0 and step < total:
        evaluator(state.params, state.model_state, step)
      bar.update()
  if checkpointer.latest_step() is None:  # nothing to train (random encoder)
    checkpointer.save(total, state, iterator.get_state(), force=True)
  checkpointer.close()
  return state


# ----------------------------------------------------------------------------
# Evaluation and images.
# ----------------------------------------------------------------------------


def restore_latest(experiment: Experiment, workdir: str) -> TrainState:
  """The latest checkpoint of ``workdir``; creates nothing when there is none."""
  if not run_dir.has_checkpoint(workdir):
    raise FileNotFoundError(
        f"No checkpoint in {workdir}/checkpoints to evaluate "
        f"(train first, or check --workdir)."
    )
  checkpointer = experiment.checkpointer(workdir)
  state, _ = checkpointer.restore(experiment.abstract_state())
  checkpointer.close()
  return state


_TABLE_COLUMNS = (
    "mlp_probe_acc",
    "linear_probe_acc",
    "knn_acc",
    "knn_k",
    "gmm_acc",
    "gmm_nmi",
    "gmm_ari",
    "recon_mse",
)


class Evaluator:
  """Evaluates parameters on the label task; writes ``eval.json`` (latest) and
  appends to ``eval_history.jsonl``; prints a table.

  The evaluation splits are read once. With ``eval.compare_untrained`` the same
  encoder at initialisation is evaluated too (once) as a reference row.
  """

  def __init__(self, experiment: Experiment, workdir: str):
    self.experiment, self.workdir = experiment, workdir
    config = experiment.config
    limit = config.eval.max_train_examples or None
    self.train_split = sources.read_all(experiment.train_source, limit)
    self.test_split = sources.read_all(sources.load_source(config.data, "test"))
    self.history = outputs.JsonLinesLog(
        os.path.join(workdir, "eval_history.jsonl")
    )
    self._untrained = None

  def resume(self, step: int) -> None:
    """Drops history entries after ``step`` (logged by an interrupted run)."""
    self.history.drop_after(step)

  def evaluate_params(
      self, params, model_state, reconstruction: bool = True
  ) -> dict:
    """{"label": metrics} of the networks (inference mode): probes, kNN, GMM and
    (if ``reconstruction``) the reconstruction MSE."""
    config, method = self.experiment.config, self.experiment.method
    binarize = config.augment.binarize
    (train_x, train_y), (test_x, test_y) = self.train_split, self.test_split
    represent = lambda images: representations.compute_representations(
        method, params, model_state, images, binarize
    )
    label = suite.evaluate_task(
        represent(train_x),
        train_y,
        represent(test_x),
        test_y,
        config.eval,
        seed=config.seed,
    )
    if reconstruction:
      label["recon_mse"] = representations.reconstruction_mse(
          method, params, model_state, test_x, binarize
      )
    return {"label": label}

  def __call__(
      self, params, model_state, step: int, final: bool = False
  ) -> dict:
    """Evaluates; discriminative methods have a reconstruction error only in the
    final evaluation, after their post-hoc decoder is trained."""
    config = self.experiment.config
    with_decoder = final or self.experiment.method.generative
    results = {
        "step": int(step),
        **self.evaluate_params(params, model_state, with_decoder),
    }
    rows = [
        [f"{config.method} (step {step})"]
        + [results["label"].get(c, "-") for c in _TABLE_COLUMNS]
    ]
    if config.eval.compare_untrained:
      if self._untrained is None:
        untrained = self.experiment.initial_state()
        self._untrained = self.evaluate_params(
            untrained.params,
            untrained.model_state,
            self.experiment.method.generative,
        )
      results["untrained_encoder"] = self._untrained
      rows.append(
          ["untrained encoder"]
          + [self._untrained["label"].get(c, "-") for c in _TABLE_COLUMNS]
      )
    with open(os.path.join(self.workdir, "eval.json"), "w") as file:
      json.dump(results, file, indent=2)
    self.history.write(step, {k: v for k, v in results.items() if k != "step"})
    print(
        f"\nEvaluation on the {len(self.test_split[1])} {config.data.name} test "
        f"images (protocol in eval.json):",
        flush=True,
    )
    print(
        outputs.format_table(["representation", *_TABLE_COLUMNS], rows),
        flush=True,
    )
    return results

  def save_images(self, params, model_state) -> None:
    """reconstructions.png (originals above reconstructions; the arrays in
    reconstructions.npz) and, for generative methods, samples.png."""
    config, method = self.experiment.config, self.experiment.method
    originals = np.asarray(
        augment.preprocess(
            self.test_split[0][: config.eval.num_images],
            config.augment.binarize,
        )
    )
    reconstructions = np.asarray(
        jax.jit(method.reconstruct)(params, model_state, originals)
    )
    outputs.save_image_grid(
        os.path.join(self.workdir, "reconstructions.png"),
        [originals, reconstructions],
    )
    np.savez_compressed(
        os.path.join(self.workdir, "reconstructions.npz"),
        originals=originals,
        reconstructions=reconstructions,
    )
    if not method.generative:
      return
    samples = jax.jit(method.sample, static_argnums=3)(
        params, model_state, seeding.purpose_key(config.seed, "samples"), 32
    )
    outputs.save_samples(
        os.path.join(self.workdir, "samples.png"), np.asarray(samples)
    )


def train_and_evaluate(config, workdir: str, mode: str = "train") -> dict:
  """``mode='train'``: train (or resume) then evaluate; ``'eval'``: evaluate the
  latest checkpoint of workdir without training. Returns the final results."""
  started = time.time()
  if mode not in ("train", "eval"):
    raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
  run_dir.prepare(workdir, create=False)
  if mode == "train":
    run_dir.check_resumable(config, workdir)
  experiment = Experiment.from_config(config)
  for network, count in experiment.parameter_counts().items():
    print(f"{network}: {count} parameters", flush=True)
  if mode == "train":
    run_dir.prepare(workdir)
    run_dir.write_config(config, workdir)
    evaluator = Evaluator(experiment, workdir)
    state = train(experiment, workdir, evaluator)
  else:
    state = restore_latest(experiment, workdir)
    evaluator = Evaluator(experiment, workdir)
  params, model_state = state.params, state.model_state
  if not experiment.method.generative:
    params, model_state, decoder_mse = posthoc_decoder.train_posthoc_decoder(
        experiment, params, model_state
    )
    print(f"post-hoc decoder: final training MSE {decoder_mse:.4f}")
  evaluator.save_images(params, model_state)
  results = evaluator(params, model_state, int(state.step), final=True)
  samples = "samples.png, " if experiment.method.generative else ""
  print(
      f"\nOutputs in {os.path.abspath(workdir)}: config.json, metrics.jsonl, "
      f"checkpoints/, reconstructions.png, {samples}eval.json, "
      f"eval_history.jsonl ({time.time() - started:.0f}s)"
  )
  return results
