"""SimCLR (Chen et al. 2020): NT-Xent on projected, normalised views.

With J views per image, every other view of the same image is a positive and
all views of the other images are negatives; each anchor's loss averages
``-log softmax`` over its J - 1 positives (the softmax runs over all B*J - 1
other views). For J = 2 this is the textbook NT-Xent.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from simvae_jax.methods.base import MethodSpec
from simvae_jax.methods.discriminative import (
    DiscriminativeMethod,
    flatten_views,
    l2_normalize,
)


def nt_xent(embeddings: jax.Array, temperature: float) -> jax.Array:
  """Multi-positive NT-Xent of embeddings [B, J, E] (J >= 2) -> scalar."""
  batch, num_views = embeddings.shape[:2]
  z = l2_normalize(flatten_views(embeddings))  # [N, E]
  logits = z @ z.T / temperature
  self_mask = jnp.eye(batch * num_views, dtype=bool)
  logits = jnp.where(self_mask, -jnp.inf, logits)
  log_prob = jax.nn.log_softmax(logits, axis=1)
  image = jnp.repeat(jnp.arange(batch), num_views)
  positives = (image[:, None] == image[None, :]) & ~self_mask
  per_anchor = -jnp.sum(jnp.where(positives, log_prob, 0.0), axis=1) / (
      num_views - 1
  )
  return per_anchor.mean()


@dataclasses.dataclass(frozen=True)
class SimCLR(DiscriminativeMethod):
  temperature: float

  def embedding_loss(self, embeddings: jax.Array):
    loss = nt_xent(embeddings, self.temperature)
    return loss, {"nt_xent": loss}


SPEC = MethodSpec("simclr", SimCLR, defaults=dict(temperature=0.5), min_views=2)
