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
means are O(1) against the second moments; a covariance whose
Cholesky factor fails is refactored with a stronger diagonal (1e-3 x its mean
variance). Log-densities use the precisions' Cholesky factors, as
scikit-learn does, so the E-step is one matmul per component.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from simvae_jax import sharding

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
  """log N(x_n | mu_k, Sigma_k): [N, K]."""
  dim = points.shape[1]
  projected = jnp.einsum(
      "nd,kde->nke", points, precision_chol, precision=HIGHEST
  ) - jnp.einsum("kd,kde->ke", means, precision_chol, precision=HIGHEST)
  log_det = jnp.sum(
      jnp.log(jnp.diagonal(precision_chol, axis1=1, axis2=2)), axis=1
  )
  return (
      -0.5 * (dim * jnp.log(2 * jnp.pi) + jnp.sum(projected**2, axis=2))
      + log_det
  )


def _log_responsibilities(points, weights, means, precision_chol):
  """(log responsibilities [N, K], log-likelihood of each point [N])."""
  joint = _estimate_log_gaussian(points, means, precision_chol) + jnp.log(
      weights
  )
  log_norm = jax.nn.logsumexp(joint, axis=1)
  return joint - log_norm[:, None], log_norm


def _cholesky(covariances, reg_covar: float):
  """Lower Cholesky factors of covariances [K, d, d] + reg_covar I; a factor
  that fails (not finite) is recomputed with 1e-3 x the mean variance added."""
  eye = jnp.eye(covariances.shape[-1], dtype=covariances.dtype)
  chol = jnp.linalg.cholesky(covariances + reg_covar * eye)
  mean_variance = jnp.trace(covariances, axis1=1, axis2=2) / eye.shape[0]
  stronger = jnp.linalg.cholesky(
      covariances + (1e-3 * mean_variance + reg_covar)[:, None, None] * eye
  )
  failed = ~jnp.all(jnp.isfinite(chol), axis=(1, 2))
  return jnp.where(failed[:, None, None], stronger, chol)


def _m_step(points, mask, resp, reg_covar: float):
  """Weights [K], means [K, d], precision Cholesky factors [K, d, d] from
  responsibilities [N, K] (padding rows weighted 0)."""
  resp = resp * mask[:, None]
  counts = resp.sum(axis=0) + 10 * jnp.finfo(points.dtype).eps
  means = (
      jnp.einsum("nk,nd->kd", resp, points, precision=HIGHEST) / counts[:, None]
  )
  # Second moments minus the means' outer products: one batched matmul
  # (centring every point for every component costs 3x more on a CPU). The
  # points are standardised, so the means are O(1) and the difference keeps
  # float32 precision; reg_covar and the Cholesky fallback cover the rest.
  weighted = points[None] * resp.T[:, :, None]  # [K, N, d]
  second = jnp.einsum("kni,nj->kij", weighted, points, precision=HIGHEST)
  covariances = second / counts[:, None, None] - jnp.einsum(
      "ki,kj->kij", means, means
  )
  chol = _cholesky(covariances, reg_covar)
  eye = jnp.broadcast_to(jnp.eye(points.shape[1]), chol.shape)
  precision_chol = jnp.swapaxes(
      jax.scipy.linalg.solve_triangular(chol, eye, lower=True), 1, 2
  )
  return counts / mask.sum(), means, precision_chol


def _squared_distances(points, centres):
  """[N, K] squared Euclidean distances (HIGHEST precision: the expansion
  cancels)."""
  return jnp.maximum(
      jnp.sum(points**2, axis=1, keepdims=True)
      - 2 * jnp.matmul(points, centres.T, precision=HIGHEST)
      + jnp.sum(centres**2, axis=1),
      0.0,
  )


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
  nearest = _squared_distances(points, centres[:1])[:, 0] * mask

  def pick(i, carry):
    centres, nearest = carry
    candidates = jax.random.choice(
        keys[i], points.shape[0], (trials,), p=nearest / nearest.sum()
    )
    distances = _squared_distances(points, points[candidates]) * mask[:, None]
    potentials = jnp.minimum(nearest[:, None], distances)  # [N, trials]
    best = jnp.argmin(potentials.sum(axis=0))
    centres = centres.at[i].set(points[candidates[best]])
    return centres, potentials[:, best]

  return jax.lax.fori_loop(1, num_components, pick, (centres, nearest))[0]


def _assign(points, centres):
  """Index [N] of each point's nearest centre."""
  return jnp.argmin(_squared_distances(points, centres), axis=1)


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


@functools.partial(jax.jit, static_argnums=3)
def _start_all(points, mask, centres, reg_covar: float):
  """EM parameters [I, ...] from the hard k-means assignments."""

  def start(centres):
    resp = jax.nn.one_hot(_assign(points, centres), centres.shape[0])
    return _m_step(points, mask, resp, reg_covar)

  return jax.vmap(start)(centres)


@functools.partial(jax.jit, static_argnums=3)
def _em_step_all(points, mask, params, reg_covar: float, active):
  """One EM iteration of each initialisation still ``active`` [I] (the others
  keep their parameters): (parameters, the mean log-likelihood [I] of the
  parameters it started from)."""
  count = mask.sum()

  def step(params):
    log_resp, log_norm = _log_responsibilities(points, *params)
    bound = jnp.sum(log_norm * mask) / count
    return _m_step(points, mask, jnp.exp(log_resp), reg_covar), bound

  new, bounds = jax.vmap(step)(params)
  keep = lambda n, o: jnp.where(
      active.reshape((-1,) + (1,) * (n.ndim - 1)), n, o
  )
  return jax.tree.map(keep, new, params), bounds


@jax.jit
def _most_probable(points, weights, means, precision_chol):
  return jnp.argmax(
      _log_responsibilities(points, weights, means, precision_chol)[0], axis=1
  )


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
  # EM driven from the host, one compiled iteration per call: XLA:CPU runs
  # these matmuls several times slower inside a compiled loop.
  params = _start_all(points, mask, centres, reg_covar)
  bounds = np.full(num_inits, -np.inf)
  iterations = np.zeros(num_inits, np.int64)
  active = np.ones(num_inits, bool)
  for _ in range(max_iter):
    params, new_bounds = _em_step_all(
        points, mask, params, reg_covar, jnp.asarray(active)
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
  weights, means, precision_chol = (np.asarray(p[best]) for p in params)
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
