"""The discriminative baselines' objectives (SimCLR, VICReg, MoCo and its
queue and momentum encoder) against independent NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from simvae_jax import methods, sharding, train_step
from simvae_jax.data import augment
from simvae_jax.methods import moco, simclr, vicreg
from simvae_jax.train_state import init_train_state

from conftest import tiny_digits_config


def rng_arrays(*shapes, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.normal(size=shape).astype(np.float32) for shape in shapes]


def normalize(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------
# SimCLR.
# ----------------------------------------------------------------------------


def textbook_nt_xent(a, b, temperature):
  """NT-Xent of Chen et al. for two views a, b [N, E]: 2N anchors, positive
  (i, i + N), denominator over the 2N - 1 others."""
  z = normalize(np.concatenate([a, b]).astype(np.float64))
  n = len(a)
  sim = z @ z.T / temperature
  total = 0.0
  for i in range(2 * n):
    positive = (i + n) % (2 * n)
    others = [k for k in range(2 * n) if k != i]
    total += -(sim[i, positive] - np.log(np.sum(np.exp(sim[i, others]))))
  return total / (2 * n)


def multi_positive_reference(embeddings, temperature):
  batch, views, _ = embeddings.shape
  z = normalize(embeddings.reshape(batch * views, -1).astype(np.float64))
  sim = z @ z.T / temperature
  total = 0.0
  for a in range(batch * views):
    others = [k for k in range(batch * views) if k != a]
    log_norm = np.log(np.sum(np.exp(sim[a, others])))
    positives = [k for k in others if k // views == a // views]
    total += -np.mean([sim[a, p] - log_norm for p in positives])
  return total / (batch * views)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 0.9])
def test_simclr_two_views_is_textbook_nt_xent(temperature):
  (embeddings,) = rng_arrays((6, 2, 8))
  got = float(simclr.nt_xent(embeddings, temperature))
  expected = textbook_nt_xent(embeddings[:, 0], embeddings[:, 1], temperature)
  assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("num_views, temperature", [(3, 0.5), (4, 0.2)])
def test_simclr_many_views(num_views, temperature):
  (embeddings,) = rng_arrays((5, num_views, 8), seed=num_views)
  got = float(simclr.nt_xent(embeddings, temperature))
  assert got == pytest.approx(
      multi_positive_reference(embeddings, temperature), rel=1e-5
  )


def test_multi_view_methods_need_two_views():
  for name in ("simclr", "vicreg", "moco"):
    with pytest.raises(ValueError, match="num_views >= 2"):
      methods.make_method(
          tiny_digits_config(method=name, num_views=1), (8, 8, 1)
      )


# ----------------------------------------------------------------------------
# VICReg.
# ----------------------------------------------------------------------------


def official_vicreg_two_views(x, y, eps=1e-4):
  """The official VICReg terms for two views (float64, unbiased variances)."""
  x, y = x.astype(np.float64), y.astype(np.float64)
  n, d = x.shape
  invariance = np.mean((x - y) ** 2)
  x, y = x - x.mean(0), y - y.mean(0)
  std_x, std_y = np.sqrt(x.var(0, ddof=1) + eps), np.sqrt(
      y.var(0, ddof=1) + eps
  )
  variance = (
      np.mean(np.maximum(0, 1 - std_x)) / 2
      + np.mean(np.maximum(0, 1 - std_y)) / 2
  )
  off = lambda c: c - np.diag(np.diag(c))
  cov_x, cov_y = x.T @ x / (n - 1), y.T @ y / (n - 1)
  covariance = (off(cov_x) ** 2).sum() / d + (off(cov_y) ** 2).sum() / d
  return invariance, variance, covariance


def test_vicreg_two_views_matches_official_terms():
  (embeddings,) = rng_arrays((16, 2, 6))
  embeddings = (
      0.5 * embeddings
  )  # some dims below unit std, so the hinge is active
  terms = vicreg.vicreg_terms(embeddings)
  expected = official_vicreg_two_views(embeddings[:, 0], embeddings[:, 1])
  for name, value in zip(("invariance", "variance", "covariance"), expected):
    assert float(terms[name]) == pytest.approx(value, rel=1e-5), name


def test_vicreg_many_views_averages_pairs():
  (embeddings,) = rng_arrays((16, 4, 6), seed=3)
  terms = vicreg.vicreg_terms(0.5 * embeddings)
  pair_terms = [
      official_vicreg_two_views(0.5 * embeddings[:, j], 0.5 * embeddings[:, k])
      for j in range(4)
      for k in range(j + 1, 4)
  ]
  assert float(terms["invariance"]) == pytest.approx(
      np.mean([p[0] for p in pair_terms]), rel=1e-5
  )
  # Each view's variance/covariance counted once: the mean over pairs of the
  # two-view terms (covariance of two views summed) equals them.
  assert float(terms["variance"]) == pytest.approx(
      np.mean([p[1] for p in pair_terms]), rel=1e-5
  )
  assert float(terms["covariance"]) == pytest.approx(
      np.mean([p[2] for p in pair_terms]), rel=1e-5
  )


@pytest.mark.slow
def test_vicreg_coefficients():
  config = tiny_digits_config(
      method="vicreg",
      **{
          "vicreg.invariance_weight": 3.0,
          "vicreg.variance_weight": 7.0,
          "vicreg.covariance_weight": 0.5,
      },
  )
  method = methods.make_method(config, (8, 8, 1))
  params, state = method.init(jax.random.PRNGKey(0), (8, 8, 1))
  views = jax.random.uniform(jax.random.PRNGKey(1), (8, 3, 8, 8, 1))
  loss, (terms, _) = method.objective(params, state, views, None)
  expected = (
      3.0 * terms["invariance"]
      + 7.0 * terms["variance"]
      + 0.5 * terms["covariance"]
  )
  assert float(loss) == pytest.approx(float(expected), rel=1e-6)


# ----------------------------------------------------------------------------
# MoCo.
# ----------------------------------------------------------------------------


def moco_reference(queries, keys, queue, temperature):
  queries, keys, queue = (
      normalize(a.astype(np.float64)) for a in (queries, keys, queue)
  )
  batch, views, _ = queries.shape
  losses = []
  for b in range(batch):
    for j in range(views):
      for k in range(views):
        if j == k:
          continue
        logits = (
            np.concatenate(
                [[queries[b, j] @ keys[b, k]], queue @ queries[b, j]]
            )
            / temperature
        )
        losses.append(-(logits[0] - np.log(np.sum(np.exp(logits)))))
  return np.mean(losses)


@pytest.mark.parametrize("num_views, temperature", [(2, 0.2), (4, 0.7)])
def test_moco_loss(num_views, temperature):
  queries, keys, queue = rng_arrays(
      (5, num_views, 8), (5, num_views, 8), (11, 8)
  )
  got = moco.moco_loss(
      *(jnp.asarray(normalize(a)) for a in (queries, keys, queue)), temperature
  )
  assert float(got) == pytest.approx(
      moco_reference(queries, keys, queue, temperature), rel=1e-5
  )


def test_moco_queue_rolls():
  queue = jnp.arange(12.0).reshape(6, 2)
  keys = -jnp.arange(1.0, 5.0).reshape(2, 2)
  rolled = np.asarray(moco.enqueue(queue, keys))
  np.testing.assert_array_equal(rolled[:2], keys)
  np.testing.assert_array_equal(rolled[2:], queue[:4])


@pytest.mark.slow
def test_moco_step_updates_queue_and_momentum_encoder():
  config = tiny_digits_config(
      method="moco",
      num_views=2,
      batch_size=4,
      **{"moco.queue_size": 16, "moco.momentum": 0.9},
  )
  method = methods.make_method(config, (8, 8, 1))
  optimizer = optax.adam(1e-2)
  mesh = sharding.make_mesh(jax.devices()[:1])
  state = init_train_state(method, optimizer, (8, 8, 1), 0, mesh)
  before = jax.device_get(state)
  steps = train_step.compile_train_steps(
      method, optimizer, optax.constant_schedule(1e-2), 2, config.augment, mesh
  )
  images = np.random.default_rng(0).integers(
      0, 256, (4, 8, 8, 1), dtype=np.uint8
  )
  batches = train_step.stack_batches(
      [{"image": images, "label": np.zeros(4, np.int32)}], mesh
  )
  after = jax.device_get(steps(state, batches, True)[0])
  # Queue: the 8 new keys (normalised) first, the 8 newest old entries after.
  queue = after.method_state["queue"]
  np.testing.assert_allclose(np.linalg.norm(queue[:8], axis=1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(queue[8:], before.method_state["queue"][:8])
  # Keys were computed by the key encoder *before* the update.
  rng = jax.random.split(jax.random.fold_in(before.rng, 0))[0]
  views = augment.augment_views(rng, images, 2, config.augment)
  keys, _ = method.embed(
      before.method_state["key_params"],
      before.method_state["key_state"],
      views,
      train=True,
  )
  keys = moco.l2_normalize(keys)
  np.testing.assert_allclose(
      queue[:8], np.asarray(keys).reshape(8, -1), atol=1e-5
  )
  # Momentum: key <- 0.9 key + 0.1 updated query parameters.
  for key_old, key_new, query_new in zip(
      jax.tree.leaves(before.method_state["key_params"]),
      jax.tree.leaves(after.method_state["key_params"]),
      jax.tree.leaves({p: after.params[p] for p in ("encoder", "head")}),
  ):
    np.testing.assert_allclose(
        key_new, 0.9 * key_old + 0.1 * query_new, rtol=1e-5, atol=1e-7
    )
  assert not np.allclose(
      after.params["encoder"]["Dense_0"]["kernel"],
      before.params["encoder"]["Dense_0"]["kernel"],
  )
