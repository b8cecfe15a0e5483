"""SimVAE: the ELBO of the SSL model with a J-view Gaussian prior (paper §4, Eq. 6).

Loss per image set i, summed over its J views j and latent dims d::

    sum_j [ -log p(x^j|z^j) - H[q(z^j|x^j)] ]
      + sum_j ||z^j - zbar||^2 / (2 sigma^2)      # p(z^1..z^J | y), psi integrated out
      [+ ||zbar||^2 / 2]                          # optional N(0, I) prior on zbar

with zbar = mean_j z^j (gradients flow through it). J = 1 leaves the prior term
zero, so with the zbar prior SimVAE reduces to a VAE.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from simvae_jax.methods.autoencoder import GenerativeMethod, gaussian_entropy
from simvae_jax.methods.base import MethodSpec


def simvae_objective(
    nll: jax.Array,
    log_variance: jax.Array,
    latent: jax.Array,
    prior_variance: float,
    mean_prior: bool,
):
  """SimVAE loss from one pass of a batch of image sets.

  Args:
    nll: [B, J] -log p(x^j|z^j).
    log_variance: [B, J, D] posterior log-variances.
    latent: [B, J, D] reparameterised samples z^j.
    prior_variance: sigma^2 of p(z|y).
    mean_prior: add the N(0, I) term ||zbar||^2 / 2.

  Returns:
    (loss, terms): the batch mean of the per-set loss, and its terms (batch
    means of per-set sums): reconstruction, entropy, prior, mean_prior.
  """
  mean_latent = latent.mean(axis=1, keepdims=True)
  prior = jnp.sum(jnp.square(latent - mean_latent), axis=(1, 2)) / (
      2 * prior_variance
  )
  terms = {
      "reconstruction": nll.sum(axis=1).mean(),
      "entropy": gaussian_entropy(log_variance).sum(axis=1).mean(),
      "prior": prior.mean(),
      "mean_prior": (
          0.5 * jnp.sum(jnp.square(mean_latent), axis=(1, 2)).mean()
          if mean_prior
          else jnp.zeros(())
      ),
  }
  loss = (
      terms["reconstruction"]
      - terms["entropy"]
      + terms["prior"]
      + terms["mean_prior"]
  )
  return loss, terms


@dataclasses.dataclass(frozen=True)
class SimVAE(GenerativeMethod):
  """SimVAE method: a Gaussian autoencoder trained with ``simvae_objective``."""

  prior_variance: float
  mean_prior: bool

  def __post_init__(self):
    if self.prior_variance <= 0:
      raise ValueError(
          f"simvae.prior_variance must be > 0, got {self.prior_variance}"
      )

  def objective(
      self, params: dict, model_state: dict, views: jax.Array, rng: jax.Array
  ):
    """views: float32 [B, J, H, W, C] -> (scalar loss, (terms, model_state))."""
    out, model_state = self.autoencoder.pass_views(
        params, model_state, views, rng
    )
    loss, terms = simvae_objective(
        out.nll,
        out.log_variance,
        out.latent,
        self.prior_variance,
        self.mean_prior,
    )
    return loss, (terms, model_state)


SPEC = MethodSpec(
    "simvae", SimVAE, defaults=dict(prior_variance=0.15, mean_prior=True)
)
