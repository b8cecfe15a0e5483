"""Trained runs from Python, without the command line.

  run = simvae_jax.load("runs/digits")
  z = run.encode(images)            # uint8 [N, H, W, C] -> float32 [N, D]
  x = run.reconstruct(images)       # -> float32 [N, H, W, C] in [0, 1]
  s = run.sample(16)                # generative methods: prior samples

The run's config and image shape come from its workdir (``config.json``,
``run.json``), its networks from the latest readable checkpoint (and, for
discriminative methods, the post-hoc decoder trained at the end of the run).
Every function is jitted, batched, and sharded over all devices.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import jax
import ml_collections
import numpy as np
from etils import epath

from simvae_jax import (
    checkpointing,
    methods,
    online_probe,
    optimizers,
    posthoc_decoder,
    seeding,
    sharding,
)
from simvae_jax import workdir as run_dir
from simvae_jax.evaluation import representations
from simvae_jax.train_state import abstract_train_state


def _tuples(value):
  """JSON lists back to the tuples the config used (hashable networks)."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


@dataclasses.dataclass
class TrainedRun:
  """A trained run's config, method and variables (see the module doc)."""

  config: ml_collections.ConfigDict
  method: object
  params: dict
  model_state: dict
  step: int
  image_shape: tuple
  mesh: jax.sharding.Mesh

  def _map(self, fn, images, batch_size: int) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != self.image_shape:
      raise ValueError(
          f"expected uint8 images [N, {', '.join(map(str, self.image_shape))}], "
          f"got {images.dtype} {images.shape}"
      )
    return fn(
        self.method,
        self.params,
        self.model_state,
        images,
        self.config.augment.binarize,
        self.mesh,
        batch_size,
    )

  def encode(self, images, batch_size: int = 1000) -> np.ndarray:
    """Representations: uint8 [N, H, W, C] -> float32 [N, D]."""
    return self._map(
        representations.compute_representations, images, batch_size
    )

  def reconstruct(self, images, batch_size: int = 1000) -> np.ndarray:
    """Reconstructions in [0, 1]: uint8 [N, H, W, C] -> float32 [N, H, W, C]."""
    return self._map(representations.reconstructions, images, batch_size)

  def sample(self, count: int, seed: int = 0) -> np.ndarray:
    """Decoded prior samples [count, H, W, C] in [0, 1] (generative methods)."""
    if not self.method.generative:
      raise ValueError(
          f"{self.config.method} is not generative: it has no "
          f"prior to sample from"
      )
    return representations.samples(
        self.method,
        self.params,
        self.model_state,
        seeding.purpose_key(seed, "samples"),
        count,
        self.mesh,
    )


def load(workdir: str) -> TrainedRun:
  """The run in ``workdir`` at its latest readable checkpoint."""
  config_text = (epath.Path(workdir) / run_dir.CONFIG_FILE).read_text()
  config = ml_collections.ConfigDict(_tuples(json.loads(config_text)))
  info = run_dir.read_run_info(workdir)
  image_shape = tuple(info["image_shape"])
  method = methods.make_method(config, image_shape)
  mesh = sharding.make_mesh()
  optimizer, _ = optimizers.make_optimizer(config.optimizer)
  monitor = None
  if config.get("online_probe", {}).get("enabled", False):
    probe_optimizer = online_probe.make_optimizer(config.online_probe)
    monitor = (info["num_classes"], probe_optimizer)
  abstract = abstract_train_state(
      method, optimizer, image_shape, config.seed, mesh, monitor
  )
  checkpointer = checkpointing.Checkpointer(
      str(epath.Path(workdir) / run_dir.CHECKPOINTS), read_only=True
  )
  state, step = checkpointer.restore(abstract)
  checkpointer.close()
  params, model_state = state.params, state.model_state
  if not method.generative:
    params, model_state = posthoc_decoder.restore(
        workdir,
        params,
        model_state,
        # Only the structure is read: shapes, not a compiled initialisation.
        jax.eval_shape(
            functools.partial(method.init_decoder, image_shape=image_shape),
            seeding.purpose_key(config.seed, "init"),
        ),
    )
  return TrainedRun(
      config, method, params, model_state, step, image_shape, mesh
  )
