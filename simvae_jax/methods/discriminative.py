"""Shared parts of the discriminative methods (SimCLR, VICReg, MoCo, random).

The encoder maps an image to its representation [N, D] (the same size as the
generative methods' latent); a projection head (SimCLR, MoCo) or expander
(VICReg) maps it to the space the loss is computed in. A decoder, trained after
self-supervised training on frozen (stop-gradient) representations, gives every
method reconstructions (paper Figs. 3-4); it plays no part in the SSL loss.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from simvae_jax.methods.base import StatelessMethod


def flatten_views(views: jax.Array) -> jax.Array:
  """[B, J, ...] -> [B * J, ...] (image-major: row b * J + j is view j of b)."""
  return views.reshape(views.shape[0] * views.shape[1], *views.shape[2:])


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


@dataclasses.dataclass(frozen=True)
class DiscriminativeMethod(StatelessMethod):
  """Encoder + head trained by ``objective(embeddings)``; decoder trained after."""

  encoder: nn.Module
  head: nn.Module
  decoder: nn.Module
  latent_dim: int
  generative = False

  def init(self, rng: jax.Array, image_shape: Sequence[int]) -> dict:
    encoder_rng, head_rng, decoder_rng = jax.random.split(rng, 3)
    images = jnp.zeros((1, *image_shape), jnp.float32)
    latents = jnp.zeros((1, self.latent_dim), jnp.float32)
    return {"encoder": self.encoder.init(encoder_rng, images)["params"],
            "head": self.head.init(head_rng, latents)["params"],
            "decoder": self.decoder.init(decoder_rng, latents)["params"]}

  def represent(self, params: dict, images: jax.Array) -> jax.Array:
    """Encoder output (before the head): [N, H, W, C] -> [N, D]."""
    return self.encoder.apply({"params": params["encoder"]}, images)

  def embed(self, params: dict, views: jax.Array) -> jax.Array:
    """Head outputs of views: [B, J, H, W, C] -> [B, J, E]."""
    representations = self.represent(params, flatten_views(views))
    embeddings = self.head.apply({"params": params["head"]}, representations)
    return embeddings.reshape(*views.shape[:2], -1)

  def decode_frozen(self, params: dict, images: jax.Array) -> jax.Array:
    """The post-hoc decoder on stop-gradient representations: [N, H, W, C] -> same."""
    representations = jax.lax.stop_gradient(self.represent(params, images))
    return self.decoder.apply({"params": params["decoder"]}, representations)

  def reconstruct(self, params: dict, images: jax.Array) -> jax.Array:
    """The post-hoc decoder's output, clipped to [0, 1]."""
    return jnp.clip(self.decode_frozen(params, images), 0.0, 1.0)

  def decoder_loss(self, params: dict, images: jax.Array) -> jax.Array:
    """Per-pixel MSE of the post-hoc decoder on images [N, H, W, C]."""
    return jnp.mean(jnp.square(self.decode_frozen(params, images) - images))


@dataclasses.dataclass(frozen=True)
class RandomEncoder(DiscriminativeMethod):
  """The encoder at initialisation, never trained (the lower bound)."""

  trainable = False

  def objective(self, params: dict, views: jax.Array, rng: jax.Array):
    raise RuntimeError("The random encoder is not trained.")
