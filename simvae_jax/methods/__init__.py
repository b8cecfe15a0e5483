"""Method registry: ``--config.method=NAME`` selects the objective.

Every method exposes

* ``init(rng, image_shape) -> params`` and ``init_state(params) -> method_state``
  (arrays the step carries besides parameters, e.g. MoCo's queue; ``{}`` if none);
* ``loss(params, method_state, views [B, J, H, W, C], rng) ->
  (scalar, (terms, method_state))``, differentiated with respect to params;
* ``after_update(method_state, new_params) -> method_state`` (e.g. momentum);
* ``represent(params, images [N, H, W, C]) -> [N, D]``, ``reconstruct`` and
  ``sample`` for evaluation and figures.
"""

from __future__ import annotations

from typing import Sequence

from simvae_jax import models
from simvae_jax.methods import likelihoods, simvae
from simvae_jax.methods.autoencoder import GaussianAutoencoder

METHODS = {"simvae": simvae.build}


def make_autoencoder(config, image_shape: Sequence[int]) -> GaussianAutoencoder:
  """The Gaussian autoencoder all generative methods share, from the config."""
  likelihoods.validate_config(config.likelihood)
  latent_dim = config.model.latent_dim
  return GaussianAutoencoder(
      encoder=models.make_encoder(config.model, output_dim=2 * latent_dim),
      decoder=models.make_decoder(config.model, image_shape),
      latent_dim=latent_dim,
      likelihood=config.likelihood.name,
      log_variance=float(config.likelihood.log_variance))


def make_method(config, image_shape: Sequence[int]):
  """Builds the method named ``config.method``."""
  if config.method not in METHODS:
    raise ValueError(f"Unknown method {config.method!r}; choose one of "
                     f"{sorted(METHODS)}")
  return METHODS[config.method](config, make_autoencoder(config, image_shape))
