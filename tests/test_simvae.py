"""SimVAE objective and likelihoods against an independent NumPy reference."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from simvae_jax import methods
from simvae_jax.methods import likelihoods
from simvae_jax.methods.autoencoder import gaussian_entropy, reparameterize
from simvae_jax.methods.simvae import simvae_objective

from conftest import tiny_digits_config


def reference_nll(x, out, likelihood, log_variance):
  """-log p(x|z) of one image (float64 loops over pixels)."""
  var = math.exp(log_variance)
  total = 0.0
  for xi, oi in zip(
      x.ravel().astype(np.float64), out.ravel().astype(np.float64)
  ):
    if likelihood == "gaussian":
      total += -stats.norm(loc=oi, scale=math.sqrt(var)).logpdf(xi)
    else:
      p = 1.0 / (1.0 + math.exp(-oi))
      total += -(xi * math.log(p) + (1 - xi) * math.log(1 - p)) / var
  return total


def reference_simvae(nll, log_variance, latent, prior_variance, mean_prior):
  """Per-set loss terms of the SimVAE objective (paper Eq. 6 with the J-view
  prior), averaged over sets, in float64."""
  nll, log_variance, z = (
      np.asarray(a, np.float64) for a in (nll, log_variance, latent)
  )
  batch, views, dim = z.shape
  sums = {
      "reconstruction": 0.0,
      "entropy": 0.0,
      "prior": 0.0,
      "mean_prior": 0.0,
  }
  for b in range(batch):
    z_bar = sum(z[b, j] for j in range(views)) / views
    for j in range(views):
      sums["reconstruction"] += nll[b, j]
      sums["entropy"] += stats.multivariate_normal(
          mean=np.zeros(dim), cov=np.diag(np.exp(log_variance[b, j]))
      ).entropy()
      sums["prior"] += np.dot(z[b, j] - z_bar, z[b, j] - z_bar) / (
          2 * prior_variance
      )
    if mean_prior:
      sums["mean_prior"] += 0.5 * np.dot(z_bar, z_bar)
  terms = {k: v / batch for k, v in sums.items()}
  loss = (
      terms["reconstruction"]
      - terms["entropy"]
      + terms["prior"]
      + terms["mean_prior"]
  )
  return loss, terms


@pytest.fixture
def small_arrays():
  rng = np.random.default_rng(0)
  batch, views, dim = 3, 4, 5
  return dict(
      nll=rng.uniform(10, 50, (batch, views)).astype(np.float32),
      log_variance=rng.normal(-1, 0.5, (batch, views, dim)).astype(np.float32),
      latent=rng.normal(0, 1, (batch, views, dim)).astype(np.float32),
  )


@pytest.mark.parametrize(
    "prior_variance, mean_prior", [(0.15, True), (0.5, False)]
)
def test_objective_matches_reference(small_arrays, prior_variance, mean_prior):
  loss, terms = simvae_objective(
      **small_arrays, prior_variance=prior_variance, mean_prior=mean_prior
  )
  ref_loss, ref_terms = reference_simvae(
      **small_arrays, prior_variance=prior_variance, mean_prior=mean_prior
  )
  np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-5)
  for name, value in ref_terms.items():
    np.testing.assert_allclose(
        float(terms[name]), value, rtol=1e-5, atol=1e-6, err_msg=name
    )


def test_single_view_has_no_set_prior(small_arrays):
  arrays = {k: v[:, :1] for k, v in small_arrays.items()}
  loss, terms = simvae_objective(**arrays, prior_variance=0.15, mean_prior=True)
  ref_loss, _ = reference_simvae(**arrays, prior_variance=0.15, mean_prior=True)
  assert float(terms["prior"]) == 0.0
  np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-5)


def test_entropy_matches_scipy():
  log_variance = np.array([[-2.0, 0.3, 1.1], [0.0, 0.0, 0.0]], np.float32)
  expected = [
      stats.multivariate_normal(cov=np.diag(np.exp(lv))).entropy()
      for lv in log_variance
  ]
  np.testing.assert_allclose(
      gaussian_entropy(log_variance), expected, rtol=1e-6
  )


def test_reparameterize_moments():
  mean = jnp.full((20000, 2), 1.5)
  log_variance = jnp.log(jnp.array([[0.25, 4.0]]))
  z = np.asarray(
      reparameterize(
          jax.random.PRNGKey(0),
          mean,
          jnp.broadcast_to(log_variance, mean.shape),
      )
  )
  np.testing.assert_allclose(z.mean(0), [1.5, 1.5], atol=0.05)
  np.testing.assert_allclose(z.var(0), [0.25, 4.0], rtol=0.05)


@pytest.mark.parametrize(
    "likelihood, log_variance",
    [
        ("gaussian", -4.6),
        ("gaussian", 0.0),
        ("bernoulli", 0.0),
        ("bernoulli", -4.6),
    ],
)
def test_negative_log_likelihood_matches_reference(likelihood, log_variance):
  rng = np.random.default_rng(1)
  x = rng.uniform(0, 1, (2, 3, 4, 1)).astype(np.float32)
  if likelihood == "bernoulli":
    x = (x > 0.5).astype(np.float32)
  out = rng.normal(0.5, 1.0, x.shape).astype(np.float32)
  nll = likelihoods.Likelihood(
      likelihood, log_variance
  ).negative_log_likelihood(x, out)
  expected = [
      reference_nll(x[i], out[i], likelihood, log_variance) for i in range(2)
  ]
  np.testing.assert_allclose(nll, expected, rtol=1e-5)


def test_binary_cross_entropy_and_its_gradient_against_float64():
  """Value and gradient (sigmoid(l) - t) at moderate, zero and extreme
  logits, where a naive log(sigmoid) overflows."""
  logits = np.array([-80.0, -20.0, -1.5, 0.0, 0.7, 20.0, 80.0], np.float32)
  targets = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 0.0, 1.0], np.float32)
  value, grad = jax.value_and_grad(
      lambda l: likelihoods.binary_cross_entropy(l, targets).sum()
  )(logits)
  l, t = logits.astype(np.float64), targets.astype(np.float64)
  expected = np.logaddexp(0.0, l) - t * l  # -[t log s + (1 - t) log(1 - s)]
  np.testing.assert_allclose(
      likelihoods.binary_cross_entropy(logits, targets),
      expected,
      rtol=1e-6,
      atol=1e-12,
  )
  assert float(value) == pytest.approx(expected.sum(), rel=1e-6)
  np.testing.assert_allclose(grad, 1 / (1 + np.exp(-l)) - t, atol=1e-7)


@pytest.mark.parametrize("num_views", [1, 3])
def test_method_loss_wires_networks_to_objective(num_views):
  config = tiny_digits_config()
  method = methods.make_method(config, (8, 8, 1))
  params, state = method.init(jax.random.PRNGKey(0), (8, 8, 1))
  assert state == {}  # MLPs have no batch statistics
  views = jax.random.uniform(jax.random.PRNGKey(1), (2, num_views, 8, 8, 1))
  rng = jax.random.PRNGKey(2)
  loss, (terms, _) = method.objective(params, state, views, rng)
  out, _ = method.autoencoder.pass_views(params, state, views, rng)
  assert out.latent.shape == (2, num_views, 4)
  # The decoder's NLL, recomputed independently for one view.
  decoded, _ = method.autoencoder.decode(params, state, out.latent[0, :1])
  np.testing.assert_allclose(
      float(out.nll[0, 0]),
      reference_nll(
          np.asarray(views[0, 0]),
          np.asarray(decoded[0]),
          "gaussian",
          config.likelihood.log_variance,
      ),
      rtol=1e-5,
  )
  ref_loss, _ = reference_simvae(
      out.nll, out.log_variance, out.latent, 0.15, True
  )
  assert np.isfinite(float(loss))
  np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-5)
  assert set(terms) == {"reconstruction", "entropy", "prior", "mean_prior"}


def test_unknown_method_lists_valid_names():
  with pytest.raises(ValueError) as error:
    methods.make_method(tiny_digits_config(method="simclr2"), (8, 8, 1))
  for name in methods.names():
    assert name in str(error.value)


def test_unknown_likelihood_is_rejected():
  config = tiny_digits_config(**{"likelihood.name": "laplace"})
  with pytest.raises(ValueError, match="bernoulli"):
    methods.make_method(config, (8, 8, 1))
