"""VICReg (Bardes et al. 2022): invariance, variance and covariance terms on an
expander's outputs.

* invariance: mean squared difference, averaged over all pairs of views;
* variance: hinge ``mean_d relu(1 - sqrt(var_d + eps))`` of each view's batch,
  averaged over views (as the official code for J = 2);
* covariance: sum of squared off-diagonal covariances / E per view; the
  official code sums it over its two views, so for J views it is summed and
  scaled by 2 / J (equal to the official term at J = 2).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from simvae_jax.methods.base import MethodSpec
from simvae_jax.methods.discriminative import DiscriminativeMethod


def vicreg_terms(embeddings: jax.Array, eps: float = 1e-4) -> dict:
  """Embeddings [B, J, E] (B >= 2, J >= 2) -> dict of the three scalar terms."""
  batch, num_views, dim = embeddings.shape
  first, second = jnp.triu_indices(num_views, k=1)
  invariance = jnp.mean(
      jnp.square(embeddings[:, first] - embeddings[:, second])
  )
  centred = embeddings - embeddings.mean(axis=0, keepdims=True)
  variance = jnp.sum(jnp.square(centred), axis=0) / (batch - 1)  # [J, E]
  variance_term = jnp.mean(jax.nn.relu(1.0 - jnp.sqrt(variance + eps)))
  covariance = jnp.einsum("bje,bjf->jef", centred, centred) / (batch - 1)
  off_diagonal = covariance * (1.0 - jnp.eye(dim))
  covariance_term = (2.0 / num_views) * jnp.sum(jnp.square(off_diagonal)) / dim
  return {
      "invariance": invariance,
      "variance": variance_term,
      "covariance": covariance_term,
  }


@dataclasses.dataclass(frozen=True)
class VICReg(DiscriminativeMethod):
  invariance_weight: float
  variance_weight: float
  covariance_weight: float

  def embedding_loss(self, embeddings: jax.Array):
    terms = vicreg_terms(embeddings)
    loss = (
        self.invariance_weight * terms["invariance"]
        + self.variance_weight * terms["variance"]
        + self.covariance_weight * terms["covariance"]
    )
    return loss, terms


SPEC = MethodSpec(
    "vicreg",
    VICReg,
    defaults=dict(
        invariance_weight=25.0, variance_weight=25.0, covariance_weight=1.0
    ),
    min_views=2,
)
