"""Gaussian-encoder autoencoder shared by every generative method.

The encoder outputs ``2 * latent_dim`` numbers per image: the posterior mean and
log-variance of q(z|x) = N(mu(x), diag sigma^2(x)). The decoder maps a latent to
the likelihood's parameters (see ``likelihoods.py``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from simvae_jax import models
from simvae_jax.methods import likelihoods
from simvae_jax.methods.base import Method, apply_part, init_networks


def gaussian_entropy(log_variance: jax.Array) -> jax.Array:
  """Exact entropy of N(mu, diag exp(log_variance)): [..., D] -> [...]."""
  return 0.5 * jnp.sum(log_variance + 1.0 + math.log(2 * math.pi), axis=-1)


def gaussian_kl(
    mean_p: jax.Array,
    log_variance_p: jax.Array,
    mean_q: jax.Array,
    log_variance_q: jax.Array,
) -> jax.Array:
  """KL(N(mean_p, diag e^lv_p) || N(mean_q, diag e^lv_q)): [..., D] -> [...]."""
  return 0.5 * jnp.sum(
      log_variance_q
      - log_variance_p
      + (jnp.exp(log_variance_p) + jnp.square(mean_p - mean_q))
      / jnp.exp(log_variance_q)
      - 1.0,
      axis=-1,
  )


def reparameterize(
    rng: jax.Array, mean: jax.Array, log_variance: jax.Array
) -> jax.Array:
  """One sample z = mean + sigma * eps, eps ~ N(0, I); shapes [..., D]."""
  noise = jax.random.normal(rng, mean.shape, mean.dtype)
  return mean + jnp.exp(0.5 * log_variance) * noise


@dataclasses.dataclass(frozen=True)
class ViewPass:
  """One stochastic pass of views through the autoencoder; leading dims [B, J]."""

  mean: jax.Array  # [B, J, D]
  log_variance: jax.Array  # [B, J, D]
  latent: jax.Array  # [B, J, D]
  nll: jax.Array  # [B, J]   -log p(x^j | z^j)


@dataclasses.dataclass(frozen=True)
class GaussianAutoencoder:
  """Encoder/decoder pair with a diagonal-Gaussian posterior."""

  encoder: nn.Module
  decoder: nn.Module
  latent_dim: int
  likelihood: likelihoods.Likelihood

  def init(self, rng: jax.Array, image_shape: Sequence[int]):
    """(params, model_state) of the encoder and decoder."""
    return init_networks(
        rng,
        {
            "encoder": (
                self.encoder,
                jnp.zeros((1, *image_shape), jnp.float32),
            ),
            "decoder": (
                self.decoder,
                jnp.zeros((1, self.latent_dim), jnp.float32),
            ),
        },
    )

  def encode(
      self,
      params: dict,
      model_state: dict,
      images: jax.Array,
      train: bool = False,
  ):
    """float32 [N, H, W, C] -> ((mean, log_variance) each [N, D], model_state)."""
    outputs, model_state = apply_part(
        self.encoder, "encoder", params, model_state, images, train
    )
    return tuple(jnp.split(outputs, 2, axis=-1)), model_state

  def decode(
      self,
      params: dict,
      model_state: dict,
      latents: jax.Array,
      train: bool = False,
  ):
    """[N, D] -> (likelihood parameters [N, H, W, C], model_state)."""
    return apply_part(
        self.decoder, "decoder", params, model_state, latents, train
    )

  def pass_views(
      self, params: dict, model_state: dict, views: jax.Array, rng: jax.Array
  ):
    """Encodes, samples and decodes views [B, J, H, W, C] as one flat batch of
    B * J (an image's views adjacent), in training mode.

    Returns (ViewPass, model_state with the batch's statistics averaged in).
    """
    batch, num_views = views.shape[:2]
    flat = views.reshape(batch * num_views, *views.shape[2:])
    (mean, log_variance), model_state = self.encode(
        params, model_state, flat, True
    )
    latent = reparameterize(rng, mean, log_variance)
    outputs, model_state = self.decode(params, model_state, latent, True)
    nll = self.likelihood.negative_log_likelihood(flat, outputs)
    unflat = lambda x: x.reshape(batch, num_views, *x.shape[1:])
    return (
        ViewPass(
            unflat(mean), unflat(log_variance), unflat(latent), unflat(nll)
        ),
        model_state,
    )

  def represent(
      self, params: dict, model_state: dict, images: jax.Array
  ) -> jax.Array:
    """Representation for evaluation: the posterior mean, [N, D]."""
    return self.encode(params, model_state, images)[0][0]

  def decode_mean(
      self, params: dict, model_state: dict, latents: jax.Array
  ) -> jax.Array:
    """The likelihood's mean image of latents [N, D]: [N, H, W, C] in [0, 1]."""
    return self.likelihood.mean_image(
        self.decode(params, model_state, latents)[0]
    )

  def sample(
      self, params: dict, model_state: dict, rng: jax.Array, count: int
  ) -> jax.Array:
    """Decodes z ~ N(0, I): [count, H, W, C] in [0, 1]."""
    latents = jax.random.normal(rng, (count, self.latent_dim))
    return self.decode_mean(params, model_state, latents)


@dataclasses.dataclass(frozen=True)
class GenerativeMethod(Method):
  """Base of the generative methods: subclasses define ``objective``; the rest
  comes from the autoencoder (init, representation, reconstruction, sampling).
  """

  autoencoder: GaussianAutoencoder
  generative = True

  @classmethod
  def shared_parts(cls, config, image_shape: Sequence[int]) -> dict:
    """The Gaussian autoencoder every generative method trains."""
    latent_dim = config.model.latent_dim
    return dict(
        autoencoder=GaussianAutoencoder(
            encoder=models.make_encoder(
                config.model, output_dim=2 * latent_dim
            ),
            decoder=models.make_decoder(config.model, image_shape),
            latent_dim=latent_dim,
            likelihood=likelihoods.from_config(config.likelihood),
        )
    )

  def init(self, rng: jax.Array, image_shape: Sequence[int]):
    return self.autoencoder.init(rng, image_shape)

  def represent(
      self, params: dict, model_state: dict, images: jax.Array
  ) -> jax.Array:
    return self.autoencoder.represent(params, model_state, images)

  def decode_representations(
      self, params: dict, model_state: dict, representations: jax.Array
  ) -> jax.Array:
    """Decodes posterior means [N, D] to the likelihood's mean images."""
    return self.autoencoder.decode_mean(params, model_state, representations)

  def sample(
      self, params: dict, model_state: dict, rng: jax.Array, count: int
  ) -> jax.Array:
    return self.autoencoder.sample(params, model_state, rng, count)
