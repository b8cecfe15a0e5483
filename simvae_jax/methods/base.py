"""The interface every method implements, and the helpers they share.

A method owns its networks and is used through pure functions of arrays:

* ``init(rng, image_shape) -> (params, model_state)``: ``params`` are trained
  by the optimizer; ``model_state`` holds the networks' other Flax collections
  (BatchNorm ``batch_stats``), keyed by network, ``{}`` for MLPs;
* ``init_method_state(params, model_state, rng) -> method_state``: arrays the
  step carries besides the networks (MoCo's key encoder and queue), ``{}`` for
  most;
* ``loss(params, model_state, method_state, views [B, J, H, W, C], rng) ->
  (scalar, (terms, model_state, method_state))``, differentiated w.r.t. params,
  with the networks in training mode (batch statistics over all B*J views);
* ``after_update(method_state, new_params, step) -> method_state`` (e.g. a
  momentum encoder; ``step``: int32 [], the step just taken, counted from 1,
  for schedules such as BYOL's momentum);
* ``frozen_parts``: names of ``params`` entries the step never changes (the
  post-hoc decoder of the discriminative methods);
* ``represent(params, model_state, images [N, H, W, C]) -> [N, D]`` and
  ``reconstruct`` for evaluation, in inference mode (running statistics);
  generative methods also ``sample``.
"""

from __future__ import annotations

import jax

from simvae_jax import models


def init_networks(rng: jax.Array, networks: dict):
  """(params, model_state) of named networks ``{name: (module, example input)}``.

  Networks without batch statistics get no ``model_state`` entry.
  """
  params, model_state = {}, {}
  for key, (name, (module, example)) in zip(
      jax.random.split(rng, len(networks)), networks.items()
  ):
    params[name], state = models.init_network(module, key, example)
    if state:
      model_state[name] = state
  return params, model_state


def apply_part(
    module,
    name: str,
    params: dict,
    model_state: dict,
    inputs: jax.Array,
    train: bool,
):
  """Applies network ``name``; returns (float32 outputs, updated model_state)."""
  outputs, state = models.apply_network(
      module, params[name], model_state.get(name, {}), inputs, train
  )
  if state:
    model_state = {**model_state, name: state}
  return outputs, model_state


class Method:
  """Base of every method: no method state unless a subclass adds one.

  Subclasses define ``init`` and ``objective(params, model_state, views, rng)
  -> (loss, (terms, model_state))``.
  """

  # Methods that learn nothing (the random encoder) set this to False.
  trainable = True
  # Parts of ``params`` that self-supervised steps leave exactly as they are
  # (the discriminative methods' post-hoc decoder, trained afterwards): no
  # weight decay or other optimiser update reaches them.
  frozen_parts: tuple[str, ...] = ()

  def objective(
      self, params: dict, model_state: dict, views: jax.Array, rng: jax.Array
  ):
    """views float32 [B, J, H, W, C] -> (scalar loss, (terms, model_state))."""
    raise NotImplementedError

  def init_method_state(
      self, params: dict, model_state: dict, rng: jax.Array
  ) -> dict:
    del params, model_state, rng
    return {}

  def loss(
      self,
      params: dict,
      model_state: dict,
      method_state: dict,
      views: jax.Array,
      rng: jax.Array,
  ):
    """The step's interface: (loss, (terms, model_state, method_state))."""
    loss, (terms, model_state) = self.objective(params, model_state, views, rng)
    return loss, (terms, model_state, method_state)

  def after_update(
      self, method_state: dict, params: dict, step: jax.Array
  ) -> dict:
    del params, step
    return method_state
