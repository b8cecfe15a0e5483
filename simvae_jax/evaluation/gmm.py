"""Full-covariance Gaussian mixture fitted by EM in JAX (float32, on device).

The same model and algorithm as scikit-learn's ``GaussianMixture(
covariance_type="full")``: k-means initialisation (k-means++ seeding, then
Lloyd iterations) turned into hard responsibilities, EM until the mean
log-likelihood changes by less than ``tol``, ``reg_covar`` added to every
covariance's diagonal, and the best of ``num_inits`` initialisations (highest
final mean log-likelihood). The initialisations run together (``vmap``), and
the points are split over the devices of ``mesh`` (every sum over points is a
sharded reduction). On more than ``SCREEN_POINTS`` points the
initialisations compete on a random subset of that size, and only the winner
runs EM on every point, from its parameters on the subset (CIFAR-10's 50,000 x
64 representations: 5.7 s instead of 7.9 s for a fit on 2 cores, 15-23
iterations on every point instead of 47-54 for each of three, and an equal or
higher final likelihood; with 10,000 points the subset's optimum was farther
from the full one and the last phase took 31-38 iterations).

Float32 safety: the points are standardised (per feature, over the fitted
set) before fitting, so ``reg_covar`` acts on unit-variance features and the
means are O(1) against the second moments. Every pass over the points (E-step
and sufficient statistics) runs on the devices in float32; the precisions'
Cholesky factors (components x d x d) are computed on the host in float64
(``precision_cholesky``; a failed factorisation is retried with a stronger
diagonal, 1e-3 x the mean variance).

Speed: the points' quadratic features (x_a x_b, a <= b; [N, d(d+1)/2]) are
computed once, and then both passes of every iteration are one matmul with a
long contraction: x^T Lambda x of every component from the features and the
precisions, and every component's second moments from the features and the
responsibilities. Where the features would not fit in memory
(``FEATURE_BYTES_PER_DEVICE``), the E-step multiplies the points by every
precision factor and the M-step weights the points per component instead.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from simvae_jax import sharding
from simvae_jax.evaluation import kmeans

HIGHEST = jax.lax.Precision.HIGHEST
# The most memory per device that the points' quadratic features may take
# (CelebA's 162,770 x 64 representations: 1.3 GiB).
FEATURE_BYTES_PER_DEVICE = 2**31
# Initialisations compete on this many points (``fit``'s ``screen_points``).
SCREEN_POINTS = 20_000


@dataclasses.dataclass(frozen=True)
class Mixture:
  """A fitted mixture in the standardised coordinates ``(x - shift) / scale``.

  weights [K], means [K, d], precision_chol [K, d, d] (upper-triangular
  factors with precision = P P^T), shift and scale [d]; ``log_likelihood``:
  the mean log-likelihood per point at convergence; ``iterations``: EM
  iterations of the chosen initialisation on all the points; ``converged``:
  whether it met ``tol`` before ``max_iter``.
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


def quadratic_features(points):
  """The upper triangle of each point's outer product, x_a x_b for a <= b:
  [N, d(d+1)/2] of points [N, d]."""
  rows, cols = np.triu_indices(points.shape[1])
  return points[:, rows] * points[:, cols]


def _symmetric(upper, dim: int):
  """[M, d, d] symmetric matrices from their upper triangles [M, d(d+1)/2]
  (``quadratic_features``' order)."""
  position = np.zeros((dim, dim), np.int32)
  position[np.triu_indices(dim)] = np.arange(dim * (dim + 1) // 2)
  return upper[:, np.maximum(position, position.T)]


def _mahalanobis(points, features, means, precision_chol):
  """Squared Mahalanobis distances [N, I, K] of points [N, d] to I mixtures'
  means [I, K, d] under their precision factors [I, K, d, d].

  With the points' ``quadratic_features`` [N, F], x^T Lambda x of every
  component is one matmul of the features with the precisions' upper
  triangles (a long contraction: 6x faster on a CPU); without them (None),
  one matmul of the points with every factor side by side.
  """
  inits, components, dim, _ = precision_chol.shape
  if features is None:
    side_by_side = jnp.transpose(precision_chol, (2, 0, 1, 3))
    projected = jnp.matmul(
        points, side_by_side.reshape(dim, -1), precision=HIGHEST
    ).reshape(-1, inits, components, dim) - jnp.einsum(
        "ikd,ikde->ike", means, precision_chol, precision=HIGHEST
    )
    return jnp.sum(projected**2, axis=3)
  precision = jnp.einsum(
      "ikab,ikcb->ikac", precision_chol, precision_chol, precision=HIGHEST
  )
  rows, cols = np.triu_indices(dim)
  upper = precision[:, :, rows, cols] * np.where(rows == cols, 1.0, 2.0)
  quadratic = jnp.matmul(
      features, upper.reshape(inits * components, -1).T, precision=HIGHEST
  ).reshape(-1, inits, components)
  pulled = jnp.einsum("ikab,ikb->ika", precision, means, precision=HIGHEST)
  linear = jnp.einsum("nd,ikd->nik", points, pulled, precision=HIGHEST)
  return quadratic - 2 * linear + jnp.sum(means * pulled, axis=2)


def _log_responsibilities(points, features, weights, means, precision_chol):
  """(log responsibilities [N, I, K], log-likelihood of each point [N, I])
  under I mixtures (weights [I, K], means [I, K, d], factors [I, K, d, d])."""
  dim = points.shape[1]
  log_det = jnp.sum(
      jnp.log(jnp.diagonal(precision_chol, axis1=2, axis2=3)), axis=2
  )
  mahalanobis = _mahalanobis(points, features, means, precision_chol)
  joint = (
      -0.5 * (dim * jnp.log(2 * jnp.pi) + mahalanobis)
      + log_det
      + jnp.log(weights)
  )
  log_norm = jax.nn.logsumexp(joint, axis=2)
  return joint - log_norm[..., None], log_norm


@functools.cache
def _host_blas():
  """A threadpoolctl controller of the BLAS libraries loaded at its first
  call: ``precision_cholesky`` makes it after importing SciPy's linalg, whose
  wheel brings its own OpenBLAS beside NumPy's."""
  import threadpoolctl  # pylint: disable=import-outside-toplevel

  return threadpoolctl.ThreadpoolController()


def precision_cholesky(covariances, reg_covar: float) -> np.ndarray:
  """Upper-triangular P with P P^T = (Sigma + reg_covar I)^-1 for every
  covariance [..., d, d], on the host in float64 (float32 result).

  A factorisation that fails is retried with 1e-3 x the mean variance added.
  The factors are tiny (components x d x d), and computing them here keeps
  LAPACK out of the compiled programs: XLA:CPU runs batched LAPACK kernels on
  its own thread pool and waits inside it, and two of them in one program
  wedged that pool for good on a 2-core machine.

  The host's BLAS runs on one thread here: OpenBLAS's worker threads, once
  woken, spin for a while after the call, and between EM iterations they
  took the cores from the next iteration's compiled program (CIFAR-10's
  50,000 x 64 points on 2 cores: 119-132 ms per iteration with them, 58-73 ms
  without).
  """
  import scipy.linalg  # pylint: disable=import-outside-toplevel

  covariances = np.asarray(covariances, np.float64)
  eye = np.eye(covariances.shape[-1])
  factors = np.empty_like(covariances)
  with _host_blas().limit(limits=1, user_api="blas"):
    for index in np.ndindex(covariances.shape[:-2]):
      covariance = covariances[index] + reg_covar * eye
      try:
        lower = np.linalg.cholesky(covariance)
      except np.linalg.LinAlgError:
        mean_variance = np.trace(covariance) / len(eye)
        lower = np.linalg.cholesky(covariance + 1e-3 * mean_variance * eye)
      factors[index] = scipy.linalg.solve_triangular(lower, eye, lower=True).T
  return factors.astype(np.float32)


def _statistics(points, features, mask, resp):
  """Weights [I, K], means [I, K, d] and covariances [I, K, d, d] (without
  reg_covar) of I mixtures from responsibilities [N, I, K] (padding rows
  weighted 0): the M-step but for the factorisation, which
  ``precision_cholesky`` does on the host.

  Second moments minus the means' outer products, the moments one matmul of
  the responsibilities with the points' ``quadratic_features`` (or, without
  them, one batched matmul of the weighted points; centring every point for
  every component costs 3x more on a CPU). The points are standardised, so
  the means are O(1) and the difference keeps float32 precision; reg_covar
  and the factorisation's fallback cover the rest.
  """
  count, inits, components = resp.shape
  dim = points.shape[1]
  resp = (resp * mask[:, None, None]).reshape(count, -1).T  # [IK, N]
  counts = resp.sum(axis=1) + 10 * jnp.finfo(points.dtype).eps
  means = jnp.matmul(resp, points, precision=HIGHEST) / counts[:, None]
  if features is None:
    weighted = points[None] * resp[:, :, None]  # [IK, N, d]
    second = jnp.einsum("kni,nj->kij", weighted, points, precision=HIGHEST)
  else:
    second = _symmetric(jnp.matmul(resp, features, precision=HIGHEST), dim)
  covariances = second / counts[:, None, None] - jnp.einsum(
      "ki,kj->kij", means, means
  )
  return (
      (counts / mask.sum()).reshape(inits, components),
      means.reshape(inits, components, dim),
      covariances.reshape(inits, components, dim, dim),
  )


@jax.jit
def _start_all(points, features, mask, centres):
  """Statistics [I, ...] (``_statistics``) of the hard k-means assignments
  to each initialisation's centres [I, K, d]."""
  assign = jax.vmap(kmeans.assign, in_axes=(None, 0), out_axes=1)(
      points, centres
  )
  return _statistics(
      points, features, mask, jax.nn.one_hot(assign, centres.shape[1])
  )


@jax.jit
def _em_step_all(points, features, mask, params):
  """One EM iteration of each initialisation's (weights, means, precision
  factors) [I, ...]: its new statistics (``_statistics``) and the mean
  log-likelihood [I] of the parameters it started from."""
  log_resp, log_norm = _log_responsibilities(points, features, *params)
  bounds = jnp.sum(log_norm * mask[:, None], axis=0) / mask.sum()
  return _statistics(points, features, mask, jnp.exp(log_resp)), bounds


def _parameters(statistics, reg_covar: float):
  """(weights, means, precision factors) on the host from statistics."""
  weights, means, covariances = (np.asarray(s) for s in statistics)
  return weights, means, precision_cholesky(covariances, reg_covar)


@jax.jit
def _most_probable(points, weights, means, precision_chol):
  """int [N]: each point's most probable component of one mixture."""
  one = (weights[None], means[None], precision_chol[None])
  log_resp = _log_responsibilities(points, None, *one)[0]
  return jnp.argmax(log_resp[:, 0], axis=1)


def _features_that_fit(points):
  """The points' ``quadratic_features`` (split like the points), or None
  where they would exceed ``FEATURE_BYTES_PER_DEVICE`` (e.g. 512-d
  representations): EM then takes the slower form that needs none."""
  rows, dim = points.sharding.shard_shape(points.shape)
  if rows * dim * (dim + 1) // 2 * points.dtype.itemsize > (
      FEATURE_BYTES_PER_DEVICE
  ):
    return None
  return jax.jit(quadratic_features)(points)


def _em(points, features, mask, params, max_iter: int, tol: float, reg_covar):
  """EM from ``params`` (weights, means, precision factors, each [I, ...])
  until every initialisation's mean log-likelihood changes by less than
  ``tol`` or ``max_iter`` iterations; returns (params, bounds [I], iterations
  [I], still active [I])."""
  inits = len(params[0])
  bounds = np.full(inits, -np.inf)
  iterations = np.zeros(inits, np.int64)
  active = np.ones(inits, bool)
  # Driven from the host, one compiled iteration per call (XLA:CPU runs these
  # matmuls several times slower inside a compiled loop); the host factorises
  # the covariances between calls.
  for _ in range(max_iter):
    statistics, new_bounds = _em_step_all(points, features, mask, params)
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
  return params, bounds, iterations, active


def _best(params, bounds):
  """The parameters [1, ...] of the initialisation with the highest bound."""
  best = int(np.argmax(np.where(np.isfinite(bounds), bounds, -np.inf)))
  return tuple(p[best : best + 1] for p in params), best


def _kmeans_start(
    points, features, mask, keys, num_components, iterations, reg
):
  """Each initialisation's parameters [I, ...] (one per key) from k-means with
  ``iterations`` Lloyd iterations on the points."""
  centres = kmeans.centres(points, mask, keys, num_components, iterations)
  return _parameters(_start_all(points, features, mask, centres), reg)


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
    screen_points: int = SCREEN_POINTS,
    mesh: jax.sharding.Mesh | None = None,
) -> Mixture:
  """Fits a mixture of ``num_components`` full-covariance Gaussians to x [N,
  d] (best of ``num_inits`` initialisations); ``mesh`` defaults to this
  process's devices.

  With more than ``screen_points`` points (0: never), the initialisations
  compete on a random subset of that many points (each from its own k-means,
  EM to convergence there), and only the winner's EM runs on all the points,
  starting from its parameters on the subset.
  """
  x = np.asarray(x, np.float32)
  if len(x) < num_components:
    raise ValueError(
        f"A {num_components}-component mixture needs at least "
        f"{num_components} points, got {len(x)}"
    )
  shift = x.mean(axis=0)
  scale = x.std(axis=0) + 1e-6
  keys = jax.random.split(jax.random.PRNGKey(seed), num_inits)
  start = functools.partial(
      _kmeans_start,
      keys=keys,
      num_components=num_components,
      iterations=kmeans_iterations,
      reg=reg_covar,
  )
  screen = num_inits > 1 and 0 < screen_points < len(x)
  if screen:
    chosen = np.random.default_rng(seed).choice(
        len(x), screen_points, replace=False
    )
    subset, subset_mask = _device_points(x[chosen], shift, scale, mesh)
    subset_features = _features_that_fit(subset)
    params = start(subset, subset_features, subset_mask)
    params, bounds, _, _ = _em(
        subset, subset_features, subset_mask, params, max_iter, tol, reg_covar
    )
    params, _ = _best(params, bounds)
    del subset_features  # freed before the full features are computed
  points, mask = _device_points(x, shift, scale, mesh)
  features = _features_that_fit(points)
  if not screen:
    params = start(points, features, mask)
  params, bounds, iterations, active = _em(
      points, features, mask, params, max_iter, tol, reg_covar
  )
  params, best = _best(params, bounds)
  fitted = (float(bounds[best]), int(iterations[best]), not active[best])
  return Mixture(*(p[0] for p in params), shift, scale, *fitted)
