"""The train state: a pytree of arrays, so it jits, shards and checkpoints as is."""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import struct

from simvae_jax import online_probe, seeding, sharding, xla_options


class TrainState(struct.PyTreeNode):
  """step: int32 []; params: trained pytree; model_state: the networks' other
  Flax collections (BatchNorm ``batch_stats``, keyed by network; ``{}`` for
  MLPs); opt_state; method_state: what a method carries besides its networks
  (MoCo's key encoder and queue; ``{}`` for most); rng: uint32 [2] base key;
  online_probe: the online monitor's parameters and optimiser state
  (``online_probe.py``; ``{}`` when it is off).

  The per-step key is ``fold_in(rng, step)``, so resuming at a step replays the
  same randomness as an uninterrupted run.
  """

  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  method_state: Any
  rng: jax.Array
  online_probe: Any = struct.field(default_factory=dict)


def _create(
    method,
    optimizer: optax.GradientTransformation,
    image_shape: Sequence[int],
    seed: int,
    monitor=None,
) -> TrainState:
  """``monitor``: (number of classes, optimiser) of the online probe, or
  None."""
  params, model_state = method.init(
      seeding.purpose_key(seed, "init"), image_shape
  )
  method_state = method.init_method_state(
      params, model_state, seeding.purpose_key(seed, "method_state")
  )
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      model_state=model_state,
      opt_state=optimizer.init(params),
      method_state=method_state,
      rng=seeding.purpose_key(seed, "train"),
      online_probe=(
          online_probe.init(method, params, model_state, image_shape, *monitor)
          if monitor
          else {}
      ),
  )


def _creator(method, optimizer, image_shape, seed: int, monitor=None):
  return functools.partial(
      _create, method, optimizer, tuple(image_shape), seed, monitor
  )


def init_train_state(
    method,
    optimizer: optax.GradientTransformation,
    image_shape: Sequence[int],
    seed: int,
    mesh: jax.sharding.Mesh,
    monitor=None,
) -> TrainState:
  """The initial state of run ``seed``, created directly replicated on ``mesh``."""
  return xla_options.jit_initialisation(
      _creator(method, optimizer, image_shape, seed, monitor),
      mesh,
      out_shardings=sharding.replicated(mesh),
  )()


def abstract_train_state(
    method,
    optimizer: optax.GradientTransformation,
    image_shape: Sequence[int],
    seed: int,
    mesh: jax.sharding.Mesh,
    monitor=None,
) -> TrainState:
  """Shapes, dtypes and shardings of the state, without computing it (the
  template a checkpoint is restored into)."""
  replicated = sharding.replicated(mesh)
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
      jax.eval_shape(_creator(method, optimizer, image_shape, seed, monitor)),
  )
