"""Full-covariance Gaussian mixture fitted by EM in JAX (float32, on device).

The same model and algorithm as scikit-learn's ``GaussianMixture(
covariance_type="full")``: k-means initialisation (k-means++ seeding, then
Lloyd iterations) turned into hard responsibilities, EM until the mean
log-likelihood changes by less than ``tol``, ``reg_covar`` added to every
covariance's diagonal, and the best of ``num_inits`` initialisations (highest
final mean log-likelihood). The initialisations run together (``vmap``), and
the points are split over the devices of ``mesh`` (every sum over points is a
sharded reduction).

Float32 safety: the points are standardised (per feature, over the fitted
set) before fitting, so ``reg_covar`` acts on unit-variance features and the
means are O(1) against the second moments. Every pass over the points (E-step
and sufficient statistics) runs on the devices in float32; the precisions'
Cholesky factors (components x d x d) are computed on the host in float64
(``precision_cholesky``; a failed factorisation is retried with a stronger
diagonal, 1e-3 x the mean variance). Log-densities use those factors, as
scikit-learn does, so the E-step is one matmul per component.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from simvae_jax import sharding
from simvae_jax.evaluation.knn import squared_distances

HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class Mixture:
  """A fitted mixture in the standardised coordinates ``(x - shift) / scale``.

  weights [K], means [K, d], precision_chol [K, d, d] (upper-triangular
  factors with precision = P P^T), shift and scale [d]; ``log_likelihood``:
  the mean log-likelihood per point at convergence; ``iterations``: EM
  iterations of the chosen initialisation; ``converged``: whether it met
  ``tol`` before ``max_iter``.
  """

  weights: np.ndarray
  means: np.ndarray
  precision_chol: np.ndarray
  shift: np.ndarray
  scale: np.ndarray
  log_likelihood: float
  iterations: int
  converged: bool

  def predict(self, x: np.ndarray, mesh=None) -> np.ndarray:
    """int [N]: the most probable component of each point of x [N, d]."""
    points, mask = _device_points(x, self.shift, self.scale, mesh)
    clusters = _most_probable(
        points, self.weights, self.means, self.precision_chol
    )
    return np.asarray(clusters)[np.asarray(mask) > 0]


def _device_points(x, shift, scale, mesh):
  """Standardised float32 points [N', d] split over ``mesh`` (rows padded to a
  multiple of its size) and their mask [N'] (1 real, 0 padding)."""
  mesh = mesh or sharding.make_mesh(jax.local_devices())
  points = (np.asarray(x, np.float32) - shift) / scale
  padding = -len(points) % mesh.size
  points = np.pad(points, ((0, padding), (0, 0)))
  mask = np.pad(np.ones(len(x), np.float32), (0, padding))
  sharded = sharding.batch_sharded(mesh)
  return jax.device_put(points, sharded), jax.device_put(mask, sharded)


def _estimate_log_gaussian(points, means, precision_chol):
  """log N(x_n | mu_ik, Sigma_ik) [N, I, K] of points [N, d] under I mixtures'
  means [I, K, d] and precision factors [I, K, d, d]: one matmul of the
  points with every factor side by side (2x faster on a CPU than a batched
  product)."""
  inits, components, dim, _ = precision_chol.shape
  side_by_side = jnp.transpose(precision_chol, (2, 0, 1, 3)).reshape(dim, -1)
  projected = jnp.matmul(points, side_by_side, precision=HIGHEST).reshape(
      -1, inits, components, dim
  ) - jnp.einsum("ikd,ikde->ike", means, precision_chol, precision=HIGHEST)
  log_det = jnp.sum(
      jnp.log(jnp.diagonal(precision_chol, axis1=2, axis2=3)), axis=2
  )
  return (
      -0.5 * (dim * jnp.log(2 * jnp.pi) + jnp.sum(projected**2, axis=3))
      + log_det
  )


def _log_responsibilities(points, weights, means, precision_chol):
  """(log responsibilities [N, I, K], log-likelihood of each point [N, I])
  under I mixtures (weights [I, K], means [I, K, d], factors [I, K, d, d])."""
  joint = _estimate_log_gaussian(points, means, precision_chol) + jnp.log(
      weights
  )
  log_norm = jax.nn.logsumexp(joint, axis=2)
  return joint - log_norm[..., None], log_norm


def precision_cholesky(covariances, reg_covar: float) -> np.ndarray:
  """Upper-triangular P with P P^T = (Sigma + reg_covar I)^-1 for every
  covariance [..., d, d], on the host in float64 (float32 result).

  A factorisation that fails is retried with 1e-3 x the mean variance added.
  The factors are tiny (components x d x d), and computing them here keeps
  LAPACK out of the compiled programs: XLA:CPU runs batched LAPACK kernels on
  its own thread pool and waits inside it, and two of them in one program
  wedged that pool for good on a 2-core machine.
  """
  covariances = np.asarray(covariances, np.float64)
  eye = np.eye(covariances.shape[-1])
  factors = np.empty_like(covariances)
  for index in np.ndindex(covariances.shape[:-2]):
    covariance = covariances[index] + reg_covar * eye
    try:
      lower = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
      mean_variance = np.trace(covariance) / len(eye)
      lower = np.linalg.cholesky(covariance + 1e-3 * mean_variance * eye)
    factors[index] = scipy.linalg.solve_triangular(lower, eye, lower=True).T
  return factors.astype(np.float32)


def _statistics(points, mask, resp):
  """Weights [K], means [K, d] and covariances [K, d, d] (without reg_covar)
  from responsibilities [N, K] (padding rows weighted 0): the M-step but for
  the factorisation, which ``precision_cholesky`` does on the host."""
  resp = resp * mask[:, None]
  counts = resp.sum(axis=0) + 10 * jnp.finfo(points.dtype).eps
  means = (
      jnp.einsum("nk,nd->kd", resp, points, precision=HIGHEST) / counts[:, None]
  )
  # Second moments minus the means' outer products: one batched matmul
  # (centring every point for every component costs 3x more on a CPU). The
  # points are standardised, so the means are O(1) and the difference keeps
  # float32 precision; reg_covar and the factorisation's fallback cover the
  # rest.
  weighted = points[None] * resp.T[:, :, None]  # [K, N, d]
  second = jnp.einsum("kni,nj->kij", weighted, points, precision=HIGHEST)
  covariances = second / counts[:, None, None] - jnp.einsum(
      "ki,kj->kij", means, means
  )
  return counts / mask.sum(), means, covariances


def _kmeans_plus_plus(key, points, mask, num_components: int):
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


def _assign(points, centres):
  """Index [N] of each point's nearest centre."""
  return jnp.argmin(squared_distances(points, centres), axis=1)


@functools.partial(jax.jit, static_argnums=3)
def _seed_all(points, mask, keys, num_components: int):
  """k-means++ centres [I, K, d] from each of the keys [I, 2]."""
  return jax.vmap(_kmeans_plus_plus, in_axes=(0, None, None, None))(
      keys, points, mask, num_components
  )


@jax.jit
def _lloyd_all(points, mask, centres):
  """One Lloyd step of each initialisation's centres [I, K, d] (an empty
  cluster keeps its centre); also whether any assignment changed."""

  def lloyd(centres):
    assign = jax.nn.one_hot(_assign(points, centres), centres.shape[0])
    assign = assign * mask[:, None]
    counts = assign.sum(axis=0)
    sums = jnp.matmul(assign.T, points, precision=HIGHEST)
    new = jnp.where(
        counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None], centres
    )
    moved = jnp.any(_assign(points, new) != _assign(points, centres))
    return new, moved

  new, moved = jax.vmap(lloyd)(centres)
  return new, jnp.any(moved)


@jax.jit
def _start_all(points, mask, centres):
  """Statistics [I, ...] (``_statistics``) of the hard k-means assignments."""

  def start(centres):
    resp = jax.nn.one_hot(_assign(points, centres), centres.shape[0])
    return _statistics(points, mask, resp)

  return jax.vmap(start)(centres)


@jax.jit
def _em_step_all(points, mask, params):
  """One EM iteration of each initialisation's (weights, means, precision
  factors) [I, ...]: its new statistics (``_statistics``) and the mean
  log-likelihood [I] of the parameters it started from."""
  log_resp, log_norm = _log_responsibilities(points, *params)
  bounds = jnp.sum(log_norm * mask[:, None], axis=0) / mask.sum()
  # Initialisation-major responsibilities [I, N, K]: the statistics' products
  # then read contiguous rows (15% faster on a CPU than vmapping over axis 1).
  resp = jnp.exp(jnp.transpose(log_resp, (1, 0, 2)))
  statistics = jax.vmap(_statistics, in_axes=(None, None, 0))(
      points, mask, resp
  )
  return statistics, bounds


def _parameters(statistics, reg_covar: float):
  """(weights, means, precision factors) on the host from statistics."""
  weights, means, covariances = (np.asarray(s) for s in statistics)
  return weights, means, precision_cholesky(covariances, reg_covar)


@jax.jit
def _most_probable(points, weights, means, precision_chol):
  """int [N]: each point's most probable component of one mixture."""
  one = (weights[None], means[None], precision_chol[None])
  return jnp.argmax(_log_responsibilities(points, *one)[0][:, 0], axis=1)


def fit(
    x,
    num_components: int,
    *,
    seed: int = 0,
    num_inits: int = 3,
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-5,
    kmeans_iterations: int = 30,
    mesh: jax.sharding.Mesh | None = None,
) -> Mixture:
  """Fits a mixture of ``num_components`` full-covariance Gaussians to x [N,
  d] (best of ``num_inits`` initialisations); ``mesh`` defaults to this
  process's devices."""
  x = np.asarray(x, np.float32)
  if len(x) < num_components:
    raise ValueError(
        f"A {num_components}-component mixture needs at least "
        f"{num_components} points, got {len(x)}"
    )
  shift = x.mean(axis=0)
  scale = x.std(axis=0) + 1e-6
  points, mask = _device_points(x, shift, scale, mesh)
  keys = jax.random.split(jax.random.PRNGKey(seed), num_inits)
  centres = _seed_all(points, mask, keys, num_components)
  for _ in range(kmeans_iterations):
    centres, moved = _lloyd_all(points, mask, centres)
    if not moved:
      break
  # EM driven from the host, one compiled iteration per call (XLA:CPU runs
  # these matmuls several times slower inside a compiled loop); the host
  # factorises the covariances between calls.
  params = _parameters(_start_all(points, mask, centres), reg_covar)
  bounds = np.full(num_inits, -np.inf)
  iterations = np.zeros(num_inits, np.int64)
  active = np.ones(num_inits, bool)
  for _ in range(max_iter):
    statistics, new_bounds = _em_step_all(points, mask, params)
    new = _parameters(statistics, reg_covar)
    params = tuple(
        np.where(active.reshape((-1,) + (1,) * (n.ndim - 1)), n, o)
        for n, o in zip(new, params)
    )
    new_bounds = np.asarray(new_bounds, np.float64)
    change = np.where(active, new_bounds - bounds, 0.0)
    bounds = np.where(active, new_bounds, bounds)
    iterations += active
    active &= ~(np.abs(change) < tol)
    if not active.any():
      break
  converged = ~active
  best = int(np.argmax(np.where(np.isfinite(bounds), bounds, -np.inf)))
  weights, means, precision_chol = (p[best] for p in params)
  return Mixture(
      weights,
      means,
      precision_chol,
      shift,
      scale,
      float(bounds[best]),
      int(iterations[best]),
      bool(converged[best]),
  )
