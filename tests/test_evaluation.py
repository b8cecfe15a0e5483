"""Probes, GMM clustering and reconstruction error on controlled inputs."""

import functools

import jax
import numpy as np
import pytest

from simvae_jax import methods, sharding, xla_options
from simvae_jax.evaluation import clustering, probes, representations, suite
from simvae_jax.base_config import get_base_config

from conftest import tiny_digits_config
from test_knn import clusters


@pytest.fixture(scope="module")
def separable():
  train_x, train_y = clusters(num_per_class=150)
  test_x, test_y = clusters(num_per_class=50, seed=1)
  return train_x, train_y, test_x, test_y


@pytest.mark.parametrize("hidden", [0, 6])
def test_probe_separates_clusters(separable, hidden):
  result = probes.train_probe(
      *separable, hidden=hidden, max_epochs=30, learning_rate=1e-2, seed=0
  )
  assert result["acc"] >= 0.99 and 1 <= result["epoch"] <= 30


@pytest.mark.parametrize("hidden", [0, 6])
def test_probe_on_labels_unrelated_to_features_is_at_chance(hidden):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(6000, 6)).astype(np.float32)
  y = rng.permutation(np.arange(6000) % 4)
  result = probes.train_probe(
      x[:4000],
      y[:4000],
      x[4000:],
      y[4000:],
      hidden=hidden,
      max_epochs=20,
      learning_rate=1e-2,
      seed=0,
  )
  assert abs(result["acc"] - 0.25) < 0.05


@pytest.mark.slow
def test_probe_learns_a_nonlinear_boundary_only_with_a_hidden_layer():
  # XOR of two coordinates: linearly inseparable, easy for the MLP probe.
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (4000, 2)).astype(np.float32)
  y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int32)
  train, test = slice(0, 3000), slice(3000, None)
  linear = probes.train_probe(
      x[train], y[train], x[test], y[test], hidden=0, max_epochs=20
  )
  mlp = probes.train_probe(
      x[train],
      y[train],
      x[test],
      y[test],
      hidden=32,
      max_epochs=60,
      learning_rate=3e-3,
  )
  assert linear["acc"] < 0.7 and mlp["acc"] > 0.9


def test_epoch_is_chosen_on_validation(separable):
  # A slowly learning probe keeps improving, so the best validation epoch is
  # late; a fast one saturates, stops after `patience` epochs and reports the
  # first epoch that reached its best validation accuracy.
  slow = probes.train_probe(
      *separable, max_epochs=40, patience=40, learning_rate=3e-4
  )
  fast = probes.train_probe(
      *separable, max_epochs=40, patience=3, learning_rate=1e-1
  )
  assert slow["epoch"] > 20
  assert fast["epoch"] < 10 and fast["val_acc"] == 1.0


@pytest.mark.slow
def test_probes_trained_together_equal_each_trained_alone(separable):
  """All probes of an evaluation train in one program (stacked, padded to the
  largest split and class count): each result equals training it alone."""
  rng = np.random.default_rng(0)
  xor_x = rng.uniform(-1, 1, (900, 2)).astype(np.float32)
  xor_y = ((xor_x[:, 0] > 0) ^ (xor_x[:, 1] > 0)).astype(np.int32)
  noisy_x = rng.normal(size=(500, 6)).astype(np.float32)
  noisy_y = (noisy_x[:, 0] + rng.normal(size=500) > 0).astype(np.int32)
  train_x, train_y, test_x, test_y = separable
  problems = [
      probes.Problem(*separable, hidden=6),  # 3 classes, 450 examples
      probes.Problem(*separable, hidden=0),
      probes.Problem(
          noisy_x[:400], noisy_y[:400], noisy_x[400:], noisy_y[400:], 6
      ),
      probes.Problem(
          train_x[:40], train_y[:40], test_x, test_y, hidden=6
      ),  # fewer examples than a batch: a batch of 36
      probes.Problem(xor_x[:600], xor_y[:600], xor_x[600:], xor_y[600:], 16),
  ]
  settings = dict(max_epochs=12, patience=4, learning_rate=3e-3, seed=3)
  together = probes.train_probes(problems, **settings)
  for problem, result in zip(problems, together):
    alone = probes.train_probes([problem], **settings)[0]
    assert result["epoch"] == alone["epoch"]
    assert result["val_acc"] == pytest.approx(alone["val_acc"], abs=1e-6)
    assert result["acc"] == pytest.approx(alone["acc"], abs=1e-6)
  # The noisy task stops early on its own curve, not with the others.
  assert len({r["epoch"] for r in together}) > 1


@pytest.mark.parametrize("backend", ["device", "sklearn"])
def test_gmm_recovers_clusters(separable, backend):
  result = clustering.gmm_evaluate(*separable, seed=0, backend=backend)
  assert result["gmm_acc"] >= 0.99
  assert result["gmm_nmi"] >= 0.95 and result["gmm_ari"] >= 0.95


def test_auto_fits_on_the_device_from_enough_points(separable, monkeypatch):
  called = []
  for name in ("_device_clusters", "_sklearn_clusters"):
    fit = getattr(clustering, name)
    spy = lambda *args, fit=fit, name=name: called.append(name) or fit(*args)
    monkeypatch.setattr(clustering, name, spy)
  assert len(separable[0]) < clustering.DEVICE_MIN_POINTS
  clustering.gmm_evaluate(*separable, seed=0)
  monkeypatch.setattr(clustering, "DEVICE_MIN_POINTS", len(separable[0]))
  clustering.gmm_evaluate(*separable, seed=0)
  assert called == ["_sklearn_clusters", "_device_clusters"]


def test_gmm_on_shuffled_labels_is_at_chance(separable):
  train_x, train_y, test_x, test_y = separable
  rng = np.random.default_rng(0)
  result = clustering.gmm_evaluate(
      train_x, rng.permutation(train_y), test_x, rng.permutation(test_y), seed=0
  )
  assert result["gmm_acc"] < 0.4 and abs(result["gmm_ari"]) < 0.05


def test_hungarian_mapping_undoes_a_permutation():
  labels = np.array([0, 0, 1, 1, 2, 2, 2])
  clusters_ = np.array([2, 2, 0, 0, 1, 1, 0])
  mapping = clustering.hungarian_mapping(labels, clusters_, 3)
  np.testing.assert_array_equal(mapping, [1, 2, 0])


def test_reconstruction_mse_matches_numpy():
  """The error of the images' own representations decoded, and of given
  representations decoded (the evaluation passes the test split's)."""
  config = tiny_digits_config()
  method = methods.make_method(config, (8, 8, 1))
  params, state = method.init(jax.random.PRNGKey(0), (8, 8, 1))
  images = np.random.default_rng(0).integers(
      0, 256, (13, 8, 8, 1), dtype=np.uint8
  )
  targets = images.astype(np.float32) / 255

  def numpy_mse(codes):
    decoded = np.asarray(method.autoencoder.decode(params, state, codes)[0])
    return float(np.mean((np.clip(decoded, 0, 1) - targets) ** 2))

  own = method.represent(params, state, targets)
  got = representations.reconstruction_mse(
      method, params, state, images, False, batch_size=5
  )
  assert got == pytest.approx(numpy_mse(own), rel=1e-5)
  other = np.random.default_rng(1).normal(size=own.shape).astype(np.float32)
  given = representations.reconstruction_mse(
      method, params, state, images, False, batch_size=5, representations=other
  )
  assert given == pytest.approx(numpy_mse(other), rel=1e-5)
  assert abs(given - got) > 1e-4


def test_suite_reports_every_metric(separable):
  eval_config = get_base_config().eval
  eval_config.probe_epochs = 5
  eval_config.probe_learning_rate = 1e-2
  result, further = suite.evaluate(separable, {}, eval_config, seed=0)
  assert further == {}
  for key in (
      "mlp_probe_acc",
      "mlp_probe_epoch",
      "linear_probe_acc",
      "knn_acc",
      "knn_k",
      "gmm_acc",
      "gmm_nmi",
      "gmm_ari",
      "protocol",
  ):
    assert key in result
  assert result["knn_acc"] == 1.0 and result["mlp_probe_acc"] > 0.95


def test_the_cpu_inference_options_keep_the_representations():
  """The evaluation's inference programs (``xla_options``' inference set on
  a CPU whose XLA has it: dots through YNNPACK) give the representations a
  plain jit gives, here of the MLP encoder."""
  method = methods.make_method(tiny_digits_config(), (8, 8, 1))
  params, state = method.init(jax.random.PRNGKey(0), (8, 8, 1))
  images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1), np.uint8)
  ours = representations.compute_representations(
      method, params, state, images, False, sharding.make_mesh()
  )
  plain = jax.jit(functools.partial(representations._represent, method, False))(
      params, state, images
  )
  np.testing.assert_allclose(ours, plain, rtol=1e-5, atol=1e-5)


def test_an_xla_without_the_cpu_options_compiles_with_none(monkeypatch):
  for name, options in xla_options.OPTION_SETS.items():
    assert xla_options.cpu_options(name) in (None, options)
  monkeypatch.setitem(
      xla_options.OPTION_SETS, "inference", {"xla_cpu_no_such_option": 1}
  )
  xla_options.cpu_options.cache_clear()
  try:
    assert xla_options.cpu_options("inference") is None
  finally:
    xla_options.cpu_options.cache_clear()
