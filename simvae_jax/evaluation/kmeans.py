"""k-means for the Gaussian mixture's initialisations (``gmm.fit``), on
device and vmapped over initialisations, as scikit-learn's: greedy k-means++
seeding, then Lloyd iterations until no assignment changes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from simvae_jax.evaluation.knn import squared_distances

HIGHEST = jax.lax.Precision.HIGHEST


def _plus_plus(key, points, mask, num_components: int):
  """Greedy k-means++ seeding (as scikit-learn's): centres [K, d]; each new
  centre is the best, by the resulting sum of squared distances, of 2 +
  log(K) candidates drawn with probability proportional to the squared
  distance to the nearest centre so far."""
  trials = 2 + int(np.log(num_components))
  keys = jax.random.split(key, num_components)
  first = jax.random.choice(keys[0], points.shape[0], p=mask / mask.sum())
  centres = jnp.zeros((num_components, points.shape[1]), points.dtype)
  centres = centres.at[0].set(points[first])
  nearest = squared_distances(points, centres[:1])[:, 0] * mask

  def pick(i, carry):
    centres, nearest = carry
    candidates = jax.random.choice(
        keys[i], points.shape[0], (trials,), p=nearest / nearest.sum()
    )
    distances = squared_distances(points, points[candidates]) * mask[:, None]
    potentials = jnp.minimum(nearest[:, None], distances)  # [N, trials]
    best = jnp.argmin(potentials.sum(axis=0))
    centres = centres.at[i].set(points[candidates[best]])
    return centres, potentials[:, best]

  return jax.lax.fori_loop(1, num_components, pick, (centres, nearest))[0]


def assign(points, centres):
  """Index [N] of each point's nearest centre."""
  return jnp.argmin(squared_distances(points, centres), axis=1)


@functools.partial(jax.jit, static_argnums=3)
def _seed_all(points, mask, keys, num_components: int):
  """k-means++ centres [I, K, d] from each of the keys [I, 2]."""
  return jax.vmap(_plus_plus, in_axes=(0, None, None, None))(
      keys, points, mask, num_components
  )


@jax.jit
def _lloyd_all(points, mask, centres):
  """One Lloyd step of each initialisation's centres [I, K, d] (an empty
  cluster keeps its centre); also whether any assignment changed."""

  def lloyd(centres):
    hard = jax.nn.one_hot(assign(points, centres), centres.shape[0])
    hard = hard * mask[:, None]
    counts = hard.sum(axis=0)
    sums = jnp.matmul(hard.T, points, precision=HIGHEST)
    new = jnp.where(
        counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None], centres
    )
    moved = jnp.any(assign(points, new) != assign(points, centres))
    return new, moved

  new, moved = jax.vmap(lloyd)(centres)
  return new, jnp.any(moved)


def centres(points, mask, keys, num_components: int, iterations: int):
  """k-means centres [I, K, d] of points [N, d] (``mask`` [N]: 1 real, 0
  padding), one initialisation per key of keys [I, 2]: k-means++ seeding,
  then at most ``iterations`` Lloyd steps (fewer once none moves a point)."""
  found = _seed_all(points, mask, keys, num_components)
  for _ in range(iterations):
    found, moved = _lloyd_all(points, mask, found)
    if not moved:
      break
  return found
