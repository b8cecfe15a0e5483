"""The train state: a pytree of arrays, so it jits, shards and checkpoints as is."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


class TrainState(struct.PyTreeNode):
  """step: int32 []; params/opt_state/method_state: pytrees; rng: uint32 [2]
  base key. ``method_state`` holds what a method carries besides parameters
  (MoCo's momentum encoder and queue), ``{}`` for most.

  The per-step key is ``fold_in(rng, step)``, so resuming at a step replays the
  same randomness as an uninterrupted run.
  """

  step: jax.Array
  params: Any
  opt_state: Any
  method_state: Any
  rng: jax.Array


def make_optimizer(config) -> optax.GradientTransformation:
  """Adam with the config's learning rate and epsilon (SPEC §3: 8e-5, 1e-4)."""
  if config.learning_rate <= 0:
    raise ValueError(f"optimizer.learning_rate must be > 0, got "
                     f"{config.learning_rate}")
  return optax.adam(config.learning_rate, eps=config.eps)


def create_train_state(method, optimizer: optax.GradientTransformation,
                       image_shape, seed: int) -> TrainState:
  """Initialises parameters and optimizer state from ``seed`` (jit-able)."""
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(seed))
  params = method.init(init_rng, image_shape)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params),
                    method_state=method.init_state(params), rng=train_rng)
