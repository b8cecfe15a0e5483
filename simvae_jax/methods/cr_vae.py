"""CR-VAE (Sinha & Dieng 2021): ELBOs of the views plus a consistency KL.

The paper's objective for an image x and its transform t(x) is
``ELBO(x) + ELBO(t(x)) - lambda * KL(q(z|t(x)) || q(z|x))``. Here all J inputs
are augmentations of one image, none privileged, so the consistency term is the
mean over ordered pairs (j, k), j != k, of KL(q(z|x^j) || q(z|x^k)); for J = 2
that is the paper's term averaged over both directions. Loss per image::

    sum_j [ -log p(x^j|z^j) + KL(q(z^j|x^j) || N(0, I)) ] + lambda * consistency
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from simvae_jax.methods.autoencoder import GenerativeMethod, gaussian_kl
from simvae_jax.methods.base import MethodSpec
from simvae_jax.methods.vae import elbo_terms


def pairwise_consistency(mean: jax.Array, log_variance: jax.Array) -> jax.Array:
  """Mean over ordered view pairs j != k of KL(q_j || q_k): [B, J, D] -> [B].

  Zero when J = 1.
  """
  num_views = mean.shape[1]
  if num_views == 1:
    return jnp.zeros(mean.shape[0])
  kl = gaussian_kl(
      mean[:, :, None],
      log_variance[:, :, None],
      mean[:, None, :],
      log_variance[:, None, :],
  )  # [B, J, J]
  return kl.sum(axis=(1, 2)) / (num_views * (num_views - 1))


@dataclasses.dataclass(frozen=True)
class CRVAE(GenerativeMethod):
  """ELBO of every view plus ``consistency_weight`` x pairwise posterior KL."""

  consistency_weight: float

  def __post_init__(self):
    if self.consistency_weight < 0:
      raise ValueError(
          f"cr_vae.consistency_weight must be >= 0, got {self.consistency_weight}"
      )

  def objective(
      self, params: dict, model_state: dict, views: jax.Array, rng: jax.Array
  ):
    out, model_state = self.autoencoder.pass_views(
        params, model_state, views, rng
    )
    terms = {
        **elbo_terms(out),
        "consistency": pairwise_consistency(out.mean, out.log_variance).mean(),
    }
    loss = (
        terms["reconstruction"]
        + terms["kl"]
        + self.consistency_weight * terms["consistency"]
    )
    return loss, (terms, model_state)


# The consistency term compares views: J >= 2.
SPEC = MethodSpec(
    "cr_vae", CRVAE, defaults=dict(consistency_weight=1.0), min_views=2
)
