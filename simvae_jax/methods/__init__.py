"""Method registry: ``--config.method=NAME`` selects the objective.

Every method implements the interface of ``base.Method`` (init, loss,
after_update, represent, reconstruct); generative methods (``generative =
True``) also ``sample``, discriminative ones have a ``decoder_loss`` for their
post-hoc decoder; ``trainable`` is False for the random encoder, which is never
updated.
"""

from __future__ import annotations

from typing import Sequence

from simvae_jax import models
from simvae_jax.methods import cr_vae, likelihoods, moco, simclr, simvae, vae, vicreg
from simvae_jax.methods.autoencoder import GaussianAutoencoder
from simvae_jax.methods.discriminative import RandomEncoder

GENERATIVE = {
    "simvae": simvae.build,
    "vae": vae.build_vae,
    "beta_vae": vae.build_beta_vae,
    "cr_vae": cr_vae.build,
}
DISCRIMINATIVE = {
    "simclr": lambda config, **parts: simclr.SimCLR(
        **parts, temperature=float(config.simclr.temperature)
    ),
    "vicreg": lambda config, **parts: vicreg.VICReg(
        **parts,
        invariance_weight=float(config.vicreg.invariance_weight),
        variance_weight=float(config.vicreg.variance_weight),
        covariance_weight=float(config.vicreg.covariance_weight),
    ),
    "moco": lambda config, **parts: moco.MoCo(
        **parts,
        temperature=float(config.moco.temperature),
        queue_size=int(config.moco.queue_size),
        momentum=float(config.moco.momentum),
    ),
    "random": lambda config, **parts: RandomEncoder(**parts),
}
METHODS = tuple(sorted({**GENERATIVE, **DISCRIMINATIVE}))
# Methods whose loss compares views of one image: they need J >= 2.
MULTI_VIEW = ("simclr", "vicreg", "moco")
# The discriminative methods that learn (every one but the random encoder).
SELF_SUPERVISED = tuple(name for name in DISCRIMINATIVE if name != "random")


def min_views(name: str) -> int:
  """The smallest J the method ``name`` trains with."""
  return 2 if name in MULTI_VIEW else 1


def make_autoencoder(config, image_shape: Sequence[int]) -> GaussianAutoencoder:
  """The Gaussian autoencoder all generative methods share, from the config."""
  latent_dim = config.model.latent_dim
  return GaussianAutoencoder(
      encoder=models.make_encoder(config.model, output_dim=2 * latent_dim),
      decoder=models.make_decoder(config.model, image_shape),
      latent_dim=latent_dim,
      likelihood=likelihoods.from_config(config.likelihood),
  )


def make_discriminative_parts(config, image_shape: Sequence[int]) -> dict:
  """Encoder (representation of size latent_dim), head and post-hoc decoder."""
  latent_dim = config.model.latent_dim
  return dict(
      encoder=models.make_encoder(config.model, output_dim=latent_dim),
      head=models.make_head(config.model),
      decoder=models.make_decoder(config.model, image_shape),
      latent_dim=latent_dim,
  )


def make_method(config, image_shape: Sequence[int]):
  """Builds the method named ``config.method``."""
  name = config.method
  if config.num_views < min_views(name):
    raise ValueError(
        f"{name} compares views of an image: it needs num_views >= 2, "
        f"got {config.num_views}"
    )
  if name in GENERATIVE:
    return GENERATIVE[name](config, make_autoencoder(config, image_shape))
  if name in DISCRIMINATIVE:
    return DISCRIMINATIVE[name](
        config, **make_discriminative_parts(config, image_shape)
    )
  raise ValueError(f"Unknown method {name!r}; choose one of {list(METHODS)}")
