"""Shared parts of the discriminative methods (SimCLR, VICReg, MoCo, random).

The encoder maps an image to its representation [N, D] (the same size as the
generative methods' latent); a projection head (SimCLR, MoCo) or expander
(VICReg) maps it to the space the loss is computed in. A decoder, trained after
self-supervised training on frozen (stop-gradient) representations, gives every
method reconstructions (paper Figs. 3-4); it plays no part in the SSL loss and
lives outside the train state: ``init`` gives the encoder and head,
``init_decoder`` the decoder (``posthoc_decoder.py`` trains it), and the
functions that use it (``decode_representations``, ``decoder_loss``) take
params holding all three.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from simvae_jax import models
from simvae_jax.methods.base import (
    Method,
    MethodSpec,
    apply_part,
    init_networks,
)


def flatten_views(views: jax.Array) -> jax.Array:
  """[B, J, ...] -> [B * J, ...] (image-major: row b * J + j is view j of b)."""
  return views.reshape(views.shape[0] * views.shape[1], *views.shape[2:])


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


@dataclasses.dataclass(frozen=True)
class DiscriminativeMethod(Method):
  """Encoder + head trained by ``embedding_loss``; decoder trained afterwards."""

  encoder: nn.Module
  head: nn.Module
  decoder: nn.Module
  latent_dim: int

  @classmethod
  def shared_parts(cls, config, image_shape: Sequence[int]) -> dict:
    """Encoder (representation of size latent_dim), head and post-hoc decoder."""
    latent_dim = config.model.latent_dim
    return dict(
        encoder=models.make_encoder(config.model, output_dim=latent_dim),
        head=models.make_head(config.model),
        decoder=models.make_decoder(config.model, image_shape),
        latent_dim=latent_dim,
    )

  @classmethod
  def architectures(cls, config) -> dict[str, str]:
    return {**super().architectures(config), "head": "mlp"}

  def init(self, rng: jax.Array, image_shape: Sequence[int]):
    """(params, model_state) of the encoder and head: what SSL trains."""
    params, model_state = self._init_networks(rng, image_shape)
    drop = lambda tree: {k: v for k, v in tree.items() if k != "decoder"}
    return drop(params), drop(model_state)

  def init_decoder(self, rng: jax.Array, image_shape: Sequence[int]):
    """(params, model_state) of the post-hoc decoder at initialisation, from
    the same ``rng`` as ``init`` (the networks' keys are drawn together)."""
    params, model_state = self._init_networks(rng, image_shape)
    return params["decoder"], model_state.get("decoder", {})

  def _init_networks(self, rng: jax.Array, image_shape: Sequence[int]):
    latents = jnp.zeros((1, self.latent_dim), jnp.float32)
    return init_networks(
        rng,
        {
            "encoder": (
                self.encoder,
                jnp.zeros((1, *image_shape), jnp.float32),
            ),
            "head": (self.head, latents),
            "decoder": (self.decoder, latents),
        },
    )

  def embedding_loss(self, embeddings: jax.Array):
    """Head outputs [B, J, E] -> (scalar loss, dict of scalar terms)."""
    raise NotImplementedError

  def objective(
      self, params: dict, model_state: dict, views: jax.Array, rng: jax.Array
  ):
    del rng
    embeddings, model_state = self.embed(params, model_state, views, train=True)
    loss, terms = self.embedding_loss(embeddings)
    return loss, (terms, model_state)

  def encode(
      self,
      params: dict,
      model_state: dict,
      images: jax.Array,
      train: bool = False,
  ):
    """Encoder output (before the head): ([N, D], model_state)."""
    return apply_part(
        self.encoder, "encoder", params, model_state, images, train
    )

  def represent(
      self, params: dict, model_state: dict, images: jax.Array
  ) -> jax.Array:
    """Representation for evaluation, [N, H, W, C] -> [N, D] (inference mode)."""
    return self.encode(params, model_state, images)[0]

  def embed(
      self, params: dict, model_state: dict, views: jax.Array, train: bool
  ):
    """Head outputs of views [B, J, H, W, C] -> ([B, J, E], model_state)."""
    representations, model_state = self.encode(
        params, model_state, flatten_views(views), train
    )
    embeddings, model_state = apply_part(
        self.head, "head", params, model_state, representations, train
    )
    return embeddings.reshape(*views.shape[:2], -1), model_state

  def decode_frozen(
      self,
      params: dict,
      model_state: dict,
      images: jax.Array,
      train: bool = False,
  ):
    """The post-hoc decoder on stop-gradient, inference-mode representations:
    ([N, H, W, C], model_state); ``train`` is the decoder's mode."""
    representations = jax.lax.stop_gradient(
        self.represent(params, model_state, images)
    )
    return apply_part(
        self.decoder, "decoder", params, model_state, representations, train
    )

  def decode_representations(
      self, params: dict, model_state: dict, representations: jax.Array
  ) -> jax.Array:
    """The post-hoc decoder's output of representations [N, D] (inference
    mode), clipped to [0, 1]."""
    outputs, _ = apply_part(
        self.decoder, "decoder", params, model_state, representations, False
    )
    return jnp.clip(outputs, 0.0, 1.0)

  def decoder_loss(self, params: dict, model_state: dict, images: jax.Array):
    """Per-pixel MSE of the post-hoc decoder (training mode) on images
    [N, H, W, C]: (scalar, model_state)."""
    outputs, model_state = self.decode_frozen(params, model_state, images, True)
    return jnp.mean(jnp.square(outputs - images)), model_state


@dataclasses.dataclass(frozen=True)
class RandomEncoder(DiscriminativeMethod):
  """The encoder at initialisation, never trained (the lower bound)."""

  trainable = False

  def embedding_loss(self, embeddings: jax.Array):
    raise RuntimeError("The random encoder is not trained.")


SPEC = MethodSpec("random", RandomEncoder)
