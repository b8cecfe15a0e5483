"""The device GMM (evaluation/gmm.py) against scikit-learn's GaussianMixture."""

import numpy as np
import pytest
from sklearn import metrics
from sklearn.mixture import GaussianMixture

from simvae_jax.evaluation import gmm

from conftest import run_on_eight_devices


def anisotropic_clusters(num_points=3000, num_clusters=4, dim=6, seed=0):
  """Points [N, d] of ``num_clusters`` well separated Gaussians with random
  full covariances, features on different scales; their clusters [N]."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(0, 6, (num_clusters, dim))
  mixing = rng.normal(0, 1, (num_clusters, dim, dim))
  clusters = rng.integers(0, num_clusters, num_points)
  noise = np.einsum(
      "nd,nde->ne", rng.normal(size=(num_points, dim)), mixing[clusters]
  )
  scales = np.geomspace(0.1, 100, dim)
  return ((centres[clusters] + noise) * scales).astype(np.float32), clusters


def test_matches_scikit_learn_on_known_clusters():
  x, truth = anisotropic_clusters()
  ours = gmm.fit(x, 4, seed=0)
  reference = GaussianMixture(
      4, covariance_type="full", reg_covar=1e-5, random_state=0
  ).fit(x.astype(np.float64))
  ours_clusters = ours.predict(x)
  assert metrics.adjusted_rand_score(truth, ours_clusters) > 0.99
  assert metrics.adjusted_rand_score(reference.predict(x), ours_clusters) > 0.99
  assert ours.converged
  # The same likelihood: ours is per standardised point, so it differs from
  # scikit-learn's by the log-Jacobian of the standardisation.
  assert ours.log_likelihood - np.sum(np.log(ours.scale)) == pytest.approx(
      reference.lower_bound_, abs=2e-3
  )
  # The same components: means in the data's coordinates, matched by weight.
  means = ours.means * ours.scale + ours.shift
  order, reference_order = np.argsort(ours.weights), np.argsort(
      reference.weights_
  )
  np.testing.assert_allclose(
      ours.weights[order], reference.weights_[reference_order], atol=1e-3
  )
  np.testing.assert_allclose(
      means[order], reference.means_[reference_order], rtol=1e-3, atol=1e-2
  )


def test_initialisations_screened_on_a_subset_reach_the_full_fit(monkeypatch):
  """With screening, the three initialisations run EM on 600 of the 3,000
  points, and only the winner runs on all of them (spied); the mixture is
  scikit-learn's on all the points all the same."""
  x, truth = anisotropic_clusters()
  runs = []
  em = gmm._em

  def spy(points, features, mask, params, *args):
    runs.append((int(mask.sum()), len(params[0])))
    return em(points, features, mask, params, *args)

  monkeypatch.setattr(gmm, "_em", spy)
  screened = gmm.fit(x, 4, seed=0, screen_points=600)
  assert runs == [(600, 3), (3000, 1)]
  reference = GaussianMixture(
      4, covariance_type="full", reg_covar=1e-5, random_state=0
  ).fit(x.astype(np.float64))
  assert metrics.adjusted_rand_score(truth, screened.predict(x)) > 0.99
  assert screened.converged
  assert screened.log_likelihood - np.sum(
      np.log(screened.scale)
  ) == pytest.approx(reference.lower_bound_, abs=2e-3)


def test_degenerate_features_stay_finite():
  # A constant feature and duplicated points make raw covariances singular:
  # reg_covar and the Cholesky fallback keep every number finite.
  x, truth = anisotropic_clusters(num_points=600, num_clusters=3, dim=4)
  x = np.concatenate([x, np.zeros((len(x), 1), np.float32)], axis=1)
  x = np.concatenate([x, x[:50]])
  mixture = gmm.fit(x, 3, seed=0)
  assert np.isfinite(mixture.log_likelihood)
  assert np.all(np.isfinite(mixture.precision_chol))
  assert metrics.adjusted_rand_score(truth, mixture.predict(x)[:600]) > 0.99


def test_the_precision_factors_invert_the_regularised_covariances():
  """Against NumPy's inverse, for a healthy covariance and for a singular
  one (rank 1), which takes the stronger diagonal."""
  rng = np.random.default_rng(0)
  a = rng.normal(size=(5, 5))
  healthy = a @ a.T + np.eye(5)
  singular = np.outer(a[0], a[0])
  factors = gmm.precision_cholesky(np.stack([healthy, singular]), 1e-5)
  np.testing.assert_allclose(
      factors[0] @ factors[0].T,
      np.linalg.inv(healthy + 1e-5 * np.eye(5)),
      rtol=1e-4,
      atol=1e-5,
  )
  assert np.allclose(np.triu(factors[0]), factors[0])  # upper-triangular
  assert np.all(np.isfinite(factors[1]))


def test_the_host_factorisation_runs_its_blas_on_one_thread(monkeypatch):
  """OpenBLAS's threads spin after a call and took the cores from the next
  EM iteration's program (about 2x slower on 2 cores), so NumPy's and
  SciPy's BLAS run on one thread while the factors are computed, and on as
  many as before afterwards."""
  import scipy.linalg  # pylint: disable=import-outside-toplevel
  import threadpoolctl  # pylint: disable=import-outside-toplevel

  def blas_threads():
    return {
        library["filepath"]: library["num_threads"]
        for library in threadpoolctl.threadpool_info()
        if library["user_api"] == "blas"
    }

  before = blas_threads()
  if not before:
    # threadpoolctl before 3.5 finds no OpenBLAS in numpy 2's wheels, and
    # then holds nothing to one thread; other BLAS (Accelerate) it may not
    # manage at all.
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    assert "openblas" not in blas, f"threadpoolctl does not see NumPy's {blas}"
    pytest.skip(f"threadpoolctl does not manage NumPy's BLAS ({blas})")
  if max(before.values()) == 1:
    pytest.skip("the host BLAS already runs on one thread (one core)")
  seen = []
  for module, name in (
      (np.linalg, "cholesky"),
      (scipy.linalg, "solve_triangular"),
  ):
    original = getattr(module, name)

    def spy(*args, _original=original, **kwargs):
      seen.append(blas_threads())
      return _original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
  rng = np.random.default_rng(0)
  a = rng.normal(size=(3, 8, 8))
  covariances = a @ np.swapaxes(a, 1, 2) + np.eye(8)
  factors = gmm.precision_cholesky(covariances, 1e-5)
  assert len(seen) == 6  # a Cholesky and a triangular solve per component
  assert all(set(threads.values()) == {1} for threads in seen)
  assert blas_threads() == before
  np.testing.assert_allclose(
      factors @ np.swapaxes(factors, 1, 2),
      np.linalg.inv(covariances + 1e-5 * np.eye(8)),
      rtol=1e-4,
      atol=1e-5,
  )


def test_the_compiled_programs_call_no_lapack_kernel():
  """XLA:CPU runs batched LAPACK kernels (Cholesky) on its thread pool and
  blocks inside it: two in one program wedged a 2-core machine for good
  during a CIFAR-10 fit, so the factorisation stays on the host."""
  x, _ = anisotropic_clusters(num_points=64)
  points, mask = gmm._device_points(x, x.mean(0), x.std(0), None)
  features = gmm.quadratic_features(points)
  centres = np.stack([x[:4], x[4:8]])
  statistics = gmm._start_all.lower(points, features, mask, centres)
  params = gmm._parameters(gmm._start_all(points, None, mask, centres), 1e-5)
  steps = [
      gmm._em_step_all.lower(points, f, mask, params) for f in (features, None)
  ]
  for lowered in (statistics, *steps):
    text = lowered.compile().as_text()
    assert 'custom_call_target="lapack' not in text


def test_the_two_forms_of_an_em_step_agree_with_a_float64_reference():
  """EM with the points' quadratic features and without them (the form for
  features too large to keep) against NumPy in float64: log-likelihoods,
  weights, means and covariances of two mixtures at once."""
  x, _ = anisotropic_clusters(num_points=500, dim=5)
  x = (x - x.mean(0)) / x.std(0)
  points, mask = gmm._device_points(x, np.zeros(5), np.ones(5), None)
  features = gmm.quadratic_features(points)
  centres = np.stack([x[:4], x[10:14]])
  params = gmm._parameters(gmm._start_all(points, None, mask, centres), 1e-5)
  weights, means, factors = (np.asarray(p, np.float64) for p in params)
  x64 = x.astype(np.float64)
  log_joint = np.empty((500, 2, 4))
  for i, k in np.ndindex(2, 4):
    covariance = np.linalg.inv(factors[i, k] @ factors[i, k].T)
    centred = x64 - means[i, k]
    mahalanobis = np.einsum(
        "nd,de,ne->n", centred, np.linalg.inv(covariance), centred
    )
    log_joint[:, i, k] = np.log(weights[i, k]) - 0.5 * (
        mahalanobis + np.linalg.slogdet(2 * np.pi * covariance)[1]
    )
  log_norm = np.logaddexp.reduce(log_joint, axis=2)
  resp = np.exp(log_joint - log_norm[..., None])
  counts = resp.sum(0)
  expected_means = np.einsum("nik,nd->ikd", resp, x64) / counts[..., None]
  centred = x64[:, None, None] - expected_means  # [N, I, K, d]
  expected_cov = np.einsum("nik,nikd,nike->ikde", resp, centred, centred)
  expected_cov /= counts[..., None, None]
  for form in (features, None):
    (w, m, c), bounds = gmm._em_step_all(points, form, mask, params)
    np.testing.assert_allclose(bounds, log_norm.mean(0), rtol=1e-5)
    np.testing.assert_allclose(w, counts / 500, atol=1e-5)
    np.testing.assert_allclose(m, expected_means, atol=1e-4)
    np.testing.assert_allclose(c, expected_cov, atol=1e-4)


def test_more_components_than_points_is_a_clear_error():
  with pytest.raises(ValueError, match="needs at least 5 points"):
    gmm.fit(np.zeros((3, 2), np.float32), 5)


SHARDED = """
import numpy as np, jax
from simvae_jax import sharding
from sklearn.metrics import adjusted_rand_score
from simvae_jax.evaluation import gmm
from test_gmm import anisotropic_clusters
assert jax.device_count() == 8
x, _ = anisotropic_clusters(num_points=1001)  # not a multiple of 8: padded
one = gmm.fit(x, 4, seed=0, mesh=sharding.make_mesh(jax.devices()[:1]))
eight = gmm.fit(x, 4, seed=0, mesh=sharding.make_mesh(jax.devices()))
# The same components (their order may differ: seeding draws by a cumulative
# sum that is reduced in another order over 8 devices).
order_one, order_eight = np.argsort(one.weights), np.argsort(eight.weights)
np.testing.assert_allclose(
    one.means[order_one], eight.means[order_eight], rtol=1e-3, atol=1e-4
)
# Both stop within tol (1e-3) of their optimum, not at the same iteration.
assert abs(one.log_likelihood - eight.log_likelihood) < 2e-3
agree = adjusted_rand_score(
    one.predict(x), eight.predict(x, sharding.make_mesh(jax.devices()))
)
assert agree > 0.999, agree
print("ok")
"""


@pytest.mark.slow
def test_points_split_over_eight_devices_fit_the_same_mixture():
  assert run_on_eight_devices(SHARDED).strip() == "ok"
