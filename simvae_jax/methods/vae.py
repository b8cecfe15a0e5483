"""VAE (Kingma & Welling) and beta-VAE (Higgins et al.) on augmented views.

Every view is an independent sample; the loss per image sums its J views::

    sum_j [ -log p(x^j|z^j) + beta * KL(q(z^j|x^j) || N(0, I)) ]

with the KL in closed form. beta = 1 is the VAE.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from simvae_jax.methods.autoencoder import GenerativeMethod, gaussian_kl
from simvae_jax.methods.base import MethodSpec


def standard_normal_kl(mean: jax.Array, log_variance: jax.Array) -> jax.Array:
  """KL(q || N(0, I)) for diagonal q: [..., D] -> [...]."""
  return gaussian_kl(
      mean, log_variance, jnp.zeros_like(mean), jnp.zeros_like(log_variance)
  )


def elbo_terms(out) -> dict:
  """Batch means of the per-image sums over views of -log p(x|z) and
  KL(q(z|x) || N(0, I)), from a ``ViewPass``: {"reconstruction", "kl"}."""
  kl = standard_normal_kl(out.mean, out.log_variance)  # [B, J]
  return {
      "reconstruction": out.nll.sum(axis=1).mean(),
      "kl": kl.sum(axis=1).mean(),
  }


@dataclasses.dataclass(frozen=True)
class VAE(GenerativeMethod):
  """beta-weighted ELBO per view; ``beta=1`` is the plain VAE."""

  beta: float

  def __post_init__(self):
    if self.beta <= 0:
      raise ValueError(f"beta_vae.beta must be > 0, got {self.beta}")

  def objective(
      self, params: dict, model_state: dict, views: jax.Array, rng: jax.Array
  ):
    out, model_state = self.autoencoder.pass_views(
        params, model_state, views, rng
    )
    terms = elbo_terms(out)
    return terms["reconstruction"] + self.beta * terms["kl"], (
        terms,
        model_state,
    )


VAE_SPEC = MethodSpec("vae", VAE, fixed=dict(beta=1.0))
BETA_VAE_SPEC = MethodSpec("beta_vae", VAE, defaults=dict(beta=4.0))
