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
* ``represent(params, model_state, images [N, H, W, C]) -> [N, D]`` and
  ``decode_representations(params, model_state, [N, D]) -> [N, H, W, C]``
  for evaluation, in inference mode (running statistics); ``reconstruct`` is
  one after the other; generative methods also ``sample``.

A ``MethodSpec`` declares the rest: the method's config section and defaults,
the views it needs; ``methods.register`` makes it a ``--config.method``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

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

  Subclasses define ``init``, ``objective(params, model_state, views, rng)
  -> (loss, (terms, model_state))`` and, per family (generative or
  discriminative), ``shared_parts`` and ``architectures``.
  """

  # Methods that learn nothing (the random encoder) set this to False.
  trainable = True
  # Generative methods (a decoder in the objective) can ``sample``.
  generative = False

  @classmethod
  def shared_parts(cls, config, image_shape: Sequence[int]) -> dict:
    """The constructor arguments every method of the family takes (its
    networks, built from ``config.model``)."""
    raise NotImplementedError

  @classmethod
  def architectures(cls, config) -> dict[str, str]:
    """{part of ``params``: its architecture's name}, for parameter counts."""
    return {"encoder": config.model.encoder, "decoder": config.model.decoder}

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

  def represent(
      self, params: dict, model_state: dict, images: jax.Array
  ) -> jax.Array:
    """Representation for evaluation (inference mode): [N, H, W, C] -> [N, D]."""
    raise NotImplementedError

  def decode_representations(
      self, params: dict, model_state: dict, representations: jax.Array
  ) -> jax.Array:
    """Images in [0, 1] decoded from representations: [N, D] -> [N, H, W, C]
    (inference mode)."""
    raise NotImplementedError

  def reconstruct(
      self, params: dict, model_state: dict, images: jax.Array
  ) -> jax.Array:
    """The decoded representations of images [N, H, W, C], in [0, 1]."""
    return self.decode_representations(
        params, model_state, self.represent(params, model_state, images)
    )


@dataclasses.dataclass(frozen=True)
class MethodSpec:
  """Everything the package needs to know about a method besides its code.

  The method is built as ``cls(**cls.shared_parts(config, image_shape),
  **fixed, **config.<name>)``: the section ``config.<name>`` holds the method's
  hyperparameters, with ``defaults`` (absent when ``defaults`` is empty).
  """

  name: str
  cls: type[Method]
  defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  # The number of views J the loss needs (2 for losses comparing views).
  min_views: int = 1
  # Constructor arguments that are not hyperparameters (the VAE's beta = 1).
  fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def generative(self) -> bool:
    return self.cls.generative

  @property
  def self_supervised(self) -> bool:
    """A discriminative method that learns by comparing views."""
    return not self.generative and self.min_views >= 2

  def build(self, config, image_shape: Sequence[int]) -> Method:
    if config.num_views < self.min_views:
      raise ValueError(
          f"{self.name} compares views of an image: it needs num_views >= "
          f"{self.min_views}, got {config.num_views}"
      )
    hyperparameters = config[self.name].to_dict() if self.defaults else {}
    return self.cls(
        **self.cls.shared_parts(config, image_shape),
        **self.fixed,
        **hyperparameters,
    )
