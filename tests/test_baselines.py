"""The generative baselines' objectives (Gaussian KL, VAE, beta-VAE, CR-VAE)
against independent NumPy references."""

import math

import jax
import numpy as np
import pytest

from simvae_jax import methods
from simvae_jax.methods import cr_vae
from simvae_jax.methods.autoencoder import gaussian_kl

from conftest import tiny_digits_config


def rng_arrays(*shapes, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.normal(size=shape).astype(np.float32) for shape in shapes]


def np_kl(mean_p, lv_p, mean_q, lv_q):
  """KL between diagonal Gaussians, one dimension at a time (float64)."""
  total = 0.0
  for mp, vp, mq, vq in zip(mean_p, np.exp(lv_p), mean_q, np.exp(lv_q)):
    total += (
        math.log(math.sqrt(vq) / math.sqrt(vp))
        + (vp + (mp - mq) ** 2) / (2 * vq)
        - 0.5
    )
  return total


# ----------------------------------------------------------------------------
# Gaussian KL, VAE, beta-VAE, CR-VAE.
# ----------------------------------------------------------------------------


def test_gaussian_kl_matches_monte_carlo():
  mean_p, mean_q = np.array([0.3, -1.0]), np.array([0.0, 0.5])
  lv_p, lv_q = np.array([-0.5, 0.2]), np.array([0.1, -0.3])
  rng = np.random.default_rng(0)
  z = mean_p + np.exp(0.5 * lv_p) * rng.normal(size=(400000, 2))
  log_p = -0.5 * ((z - mean_p) ** 2 / np.exp(lv_p) + lv_p + np.log(2 * np.pi))
  log_q = -0.5 * ((z - mean_q) ** 2 / np.exp(lv_q) + lv_q + np.log(2 * np.pi))
  estimate = np.mean(np.sum(log_p - log_q, axis=1))
  assert float(gaussian_kl(mean_p, lv_p, mean_q, lv_q)) == pytest.approx(
      estimate, abs=0.01
  )


@pytest.mark.parametrize("method_name, beta", [("vae", 1.0), ("beta_vae", 3.5)])
@pytest.mark.parametrize("num_views", [2, 4])
def test_vae_objective(method_name, beta, num_views):
  config = tiny_digits_config(method=method_name, **{"beta_vae.beta": beta})
  method = methods.make_method(config, (8, 8, 1))
  params, state = method.init(jax.random.PRNGKey(0), (8, 8, 1))
  views = jax.random.uniform(jax.random.PRNGKey(1), (3, num_views, 8, 8, 1))
  loss, (terms, _) = method.objective(
      params, state, views, jax.random.PRNGKey(2)
  )
  out, _ = method.autoencoder.pass_views(
      params, state, views, jax.random.PRNGKey(2)
  )
  mean, lv, nll = (
      np.asarray(a, np.float64) for a in (out.mean, out.log_variance, out.nll)
  )
  kl = np.mean(
      [
          sum(
              np_kl(mean[b, j], lv[b, j], np.zeros(4), np.zeros(4))
              for j in range(num_views)
          )
          for b in range(3)
      ]
  )
  expected = nll.sum(1).mean() + beta * kl
  assert float(terms["kl"]) == pytest.approx(kl, rel=1e-5)
  assert float(loss) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("num_views", [2, 4])
def test_cr_vae_consistency(num_views):
  mean, lv = rng_arrays((3, num_views, 5), (3, num_views, 5))
  got = np.asarray(cr_vae.pairwise_consistency(mean, lv))
  for b in range(3):
    pairs = [
        np_kl(mean[b, j], lv[b, j], mean[b, k], lv[b, k])
        for j in range(num_views)
        for k in range(num_views)
        if j != k
    ]
    assert got[b] == pytest.approx(np.mean(pairs), rel=1e-5)
  if num_views == 2:  # the paper's KL(q(z|t(x)) || q(z|x)), symmetrised
    both = [
        np_kl(mean[0, 1], lv[0, 1], mean[0, 0], lv[0, 0]),
        np_kl(mean[0, 0], lv[0, 0], mean[0, 1], lv[0, 1]),
    ]
    assert got[0] == pytest.approx(np.mean(both), rel=1e-5)


def test_cr_vae_objective_weights_consistency():
  views = jax.random.uniform(jax.random.PRNGKey(1), (3, 4, 8, 8, 1))
  results = {}
  for weight in (0.0, 2.5):
    config = tiny_digits_config(
        method="cr_vae", **{"cr_vae.consistency_weight": weight}
    )
    method = methods.make_method(config, (8, 8, 1))
    params, state = method.init(jax.random.PRNGKey(0), (8, 8, 1))
    results[weight] = method.objective(
        params, state, views, jax.random.PRNGKey(2)
    )
  (loss_0, (terms, _)), (loss_w, _) = results[0.0], results[2.5]
  assert float(loss_0) == pytest.approx(
      float(terms["reconstruction"] + terms["kl"]), rel=1e-6
  )
  # (losses are ~1e3 in float32, so the difference is exact to ~1e-3)
  assert float(loss_w - loss_0) == pytest.approx(
      2.5 * float(terms["consistency"]), abs=2e-3
  )
