"""MoCo v2 (He et al. 2020; Chen et al. 2020): momentum key encoder and a queue
of negatives, both arrays in the method state, updated inside the jitted step.

For every ordered pair of views (j, k), j != k, the query of view j is scored
against the key of view k (positive) and the queue (negatives); the loss is the
mean cross-entropy over pairs. The keys of all B * J views are then enqueued
(newest first) and the key encoder follows the query encoder by
``key <- m * key + (1 - m) * query`` after each update.
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

_MOMENTUM_PARTS = ("encoder", "head")


def moco_loss(
    queries: jax.Array, keys: jax.Array, queue: jax.Array, temperature: float
) -> jax.Array:
  """Mean over ordered view pairs j != k of -log softmax(logits)[positive], the
  logits of query j being q_j . k_k (positive) and q_j . queue (negatives).

  queries, keys: normalised [B, J, E] (J >= 2); queue: normalised [K, E]. The
  negatives do not depend on k, so their log-sum-exp is taken once per query.
  """
  num_views = queries.shape[1]
  positive = (
      jnp.einsum("bje,bke->bjk", queries, keys) / temperature
  )  # [B, J, J]
  negatives = jax.nn.logsumexp(
      jnp.einsum("bje,qe->bjq", queries, queue) / temperature, axis=-1
  )  # [B, J]
  log_prob = positive - jnp.logaddexp(positive, negatives[:, :, None])
  pairs = 1.0 - jnp.eye(num_views)
  return -jnp.sum(log_prob * pairs, axis=(1, 2)).mean() / (
      num_views * (num_views - 1)
  )


def enqueue(queue: jax.Array, keys: jax.Array) -> jax.Array:
  """Newest keys [N, E] first, oldest entries dropped: [K, E] -> [K, E]."""
  return jnp.concatenate([keys, queue], axis=0)[: queue.shape[0]]


def momentum_update(key_params, query_params, momentum: float):
  return jax.tree.map(
      lambda k, q: momentum * k + (1.0 - momentum) * q, key_params, query_params
  )


@dataclasses.dataclass(frozen=True)
class MoCo(DiscriminativeMethod):
  """Method state: ``key_params`` (momentum copy of encoder and head),
  ``key_state`` (the key encoder's own batch statistics, updated by its
  training-mode passes, as BYOL keeps its target's) and ``queue`` [K, E]."""

  temperature: float
  queue_size: int
  momentum: float

  def init_method_state(
      self, params: dict, model_state: dict, rng: jax.Array
  ) -> dict:
    queue = jax.random.normal(rng, (self.queue_size, self.head.output_dim))
    return {
        "key_params": {part: params[part] for part in _MOMENTUM_PARTS},
        "key_state": {
            part: model_state[part]
            for part in _MOMENTUM_PARTS
            if part in model_state
        },
        "queue": l2_normalize(queue),
    }

  def loss(
      self,
      params: dict,
      model_state: dict,
      method_state: dict,
      views: jax.Array,
      rng: jax.Array,
  ):
    del rng
    queries, model_state = self.embed(params, model_state, views, train=True)
    keys, key_state = self.embed(
        method_state["key_params"], method_state["key_state"], views, train=True
    )
    queries = l2_normalize(queries)
    keys = jax.lax.stop_gradient(l2_normalize(keys))
    loss = moco_loss(queries, keys, method_state["queue"], self.temperature)
    method_state = dict(
        method_state,
        key_state=key_state,
        queue=enqueue(method_state["queue"], flatten_views(keys)),
    )
    return loss, ({"info_nce": loss}, model_state, method_state)

  def after_update(
      self, method_state: dict, params: dict, step: jax.Array
  ) -> dict:
    del step  # a constant momentum
    query_params = {part: params[part] for part in _MOMENTUM_PARTS}
    return dict(
        method_state,
        key_params=momentum_update(
            method_state["key_params"], query_params, self.momentum
        ),
    )


SPEC = MethodSpec(
    "moco",
    MoCo,
    defaults=dict(temperature=0.2, queue_size=4096, momentum=0.99),
    min_views=2,
)
