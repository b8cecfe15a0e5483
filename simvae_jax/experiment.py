"""What a run needs, built once from its config: ``Experiment.from_config``.

The mesh over all devices (of all processes), the training source, the
method and its networks, the optimiser and schedule, and the number of steps;
the initial, abstract (shape-only) and compiled pieces are derived from it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
from etils import epath

from simvae_jax import (
    checkpointing,
    methods,
    models,
    online_probe,
    optimizers,
    sharding,
    train_step,
)
from simvae_jax.data import augment, pipeline, sources
from simvae_jax.evaluation import evaluators, tasks
from simvae_jax.evaluation.common import count_classes
from simvae_jax.train_state import (
    TrainState,
    abstract_train_state,
    init_train_state,
)


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
  if config.checkpoint_every < 0 or config.checkpoint_every_minutes < 0:
    raise ValueError(
        "checkpoint_every and checkpoint_every_minutes must be >= 0 (0: off), "
        f"got {config.checkpoint_every} and {config.checkpoint_every_minutes}"
    )
  _check_dispatch(config)
  augment.validate_config(config.augment)
  optimizers.validate_config(config.optimizer)
  tasks.make_tasks(config.eval.tasks)
  evaluators.validate_config(config)


def _check_dispatch(config) -> None:
  """Logs, step-count checkpoints and evaluations fall on dispatch ends, so
  their intervals must be multiples of ``steps_per_dispatch``."""
  per_dispatch = config.get("steps_per_dispatch", 1)
  if per_dispatch < 1:
    raise ValueError(f"steps_per_dispatch must be >= 1, got {per_dispatch}")
  intervals = {
      "log_every": config.log_every,
      "checkpoint_every": config.checkpoint_every,
      "eval.every_steps": config.eval.every_steps,
  }
  for name, every in intervals.items():
    if every % per_dispatch:
      raise ValueError(
          f"{name}={every} is not a multiple of steps_per_dispatch="
          f"{per_dispatch}: logs, checkpoints and evaluations happen between "
          f"dispatches of {per_dispatch} steps."
      )


def _monitor(config, train_source):
  """(number of classes, optimiser) of the online probe, or None when off."""
  if not config.online_probe.enabled:
    return None
  if train_source is None:
    raise ValueError("The online probe needs the training labels: load data.")
  labels = train_source.targets()["label"]
  if np.any(labels < 0):
    raise ValueError(
        f"The online probe needs labels on the training split; "
        f"data.train_split={sources.split_name(config.data, 'train')!r} has "
        f"unlabelled examples (label -1). Turn online_probe.enabled off."
    )
  num_classes = count_classes(labels)
  return num_classes, online_probe.make_optimizer(config.online_probe)


def num_train_steps(config, num_examples: int) -> int:
  """``num_steps`` if positive, else ``num_epochs`` full epochs of batches."""
  if config.num_steps > 0:
    return int(config.num_steps)
  return int(
      config.num_epochs
      * pipeline.steps_per_epoch(num_examples, config.batch_size)
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
  # The online probe's (number of classes, optimiser), or None when it is off.
  monitor: tuple | None = None

  @classmethod
  def from_config(
      cls,
      config,
      devices=None,
      image_shape: tuple[int, ...] | None = None,
  ) -> "Experiment":
    """The run of ``config`` over ``devices`` (default: all devices of all
    processes). With ``image_shape`` (H, W, C) no data is loaded
    (``train_source`` is None, e.g. to compile for compile-only TPU devices):
    the schedule then counts ``num_steps``, or one step per epoch."""
    validate_config(config)
    mesh = sharding.make_mesh(devices)
    sharding.check_batch_size(config.batch_size, mesh)
    if image_shape is None:
      train_source = sources.load_source(config.data, "train")
      image_shape = train_source.image_shape
      num_examples = len(train_source)
    else:
      train_source, num_examples = None, config.batch_size
    image_shape = tuple(image_shape)
    augment.check_image_shape(config.augment, image_shape)
    method = methods.make_method(config, image_shape)
    total_steps = (
        num_train_steps(config, num_examples) if method.trainable else 0
    )
    optimizer, schedule = optimizers.make_optimizer(
        config.optimizer,
        total_steps,
        pipeline.steps_per_epoch(num_examples, config.batch_size),
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
        _monitor(config, train_source),
    )

  @functools.cached_property
  def probe_source(self):
    """The labelled split the probes, kNN and GMM fit on (``data.probe_split``):
    the training source itself when it names the training split."""
    data = self.config.data
    if sources.split_name(data, "probe") == sources.split_name(data, "train"):
      return self.train_source
    return sources.load_source(data, "probe")

  def train_dataset(self):
    """This process's shuffled, batched, repeated training dataset (grain)."""
    return pipeline.make_train_dataset(
        self.train_source, self.config.batch_size, seed=self.config.seed
    )

  def initial_state(self, seed: int | None = None) -> TrainState:
    """The state at step 0 of run ``seed`` (default: the config's)."""
    seed = self.config.seed if seed is None else seed
    return init_train_state(
        self.method,
        self.optimizer,
        self.image_shape,
        seed,
        self.mesh,
        self.monitor,
    )

  def abstract_state(self) -> TrainState:
    """Shapes, dtypes and shardings of the state (checkpoint restore template)."""
    return abstract_train_state(
        self.method,
        self.optimizer,
        self.image_shape,
        self.config.seed,
        self.mesh,
        self.monitor,
    )

  def compile_steps(self, mesh: jax.sharding.Mesh | None = None):
    """The jitted ``train_steps`` (K steps per call, K from the batches'
    shape) over ``mesh`` (default: the experiment's)."""
    return train_step.compile_train_steps(
        self.method,
        self.optimizer,
        self.schedule,
        self.config.num_views,
        self.config.augment,
        self.mesh if mesh is None else mesh,
        skip_nonfinite=self.config.get("skip_nonfinite", False),
        monitor_optimizer=self.monitor[1] if self.monitor else None,
    )

  def parameter_counts(self) -> dict:
    """{"encoder <name>": count, ...} for each network of the method."""
    params = self.abstract_state().params
    names = type(self.method).architectures(self.config)
    return {
        f"{part} {names[part]}": models.count_parameters(params[part])
        for part in params
    }

  def checkpointer(
      self, workdir: str, read_only: bool = False
  ) -> checkpointing.Checkpointer:
    return checkpointing.Checkpointer(
        str(epath.Path(workdir) / "checkpoints"),
        self.config.max_checkpoints,
        read_only=read_only,
    )
