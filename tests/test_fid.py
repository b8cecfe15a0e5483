"""FID: the Fréchet distance against closed forms and SciPy, the Inception
network's architecture and weight loading, the offline classifier, and FID in
a run's eval.json."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg

from simvae_jax import models, train
from simvae_jax.evaluation import fid, fid_features, inception

from conftest import tiny_digits_config


def random_covariance(rng, dim, rank=None):
  factor = rng.normal(size=(dim, rank or dim))
  return factor @ factor.T / dim


def scipy_reference(mean_1, cov_1, mean_2, cov_2):
  """The usual formula with scipy's matrix square root of C1 C2."""
  root = linalg.sqrtm(cov_1 @ cov_2).real
  return (
      np.sum((mean_1 - mean_2) ** 2)
      + np.trace(cov_1)
      + np.trace(cov_2)
      - 2 * np.trace(root)
  )


def test_closed_form_for_diagonal_gaussians():
  mean_1, mean_2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  var_1, var_2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
  expected = np.sum((mean_1 - mean_2) ** 2) + np.sum(
      (np.sqrt(var_1) - np.sqrt(var_2)) ** 2
  )
  got = fid.frechet_distance(mean_1, np.diag(var_1), mean_2, np.diag(var_2))
  assert got == pytest.approx(expected, rel=1e-10)


def test_matches_scipy_sqrtm_for_full_covariances():
  rng = np.random.default_rng(0)
  for dim in (2, 5, 16):
    args = (
        rng.normal(size=dim),
        random_covariance(rng, dim),
        rng.normal(size=dim),
        random_covariance(rng, dim),
    )
    assert fid.frechet_distance(*args) == pytest.approx(
        scipy_reference(*args), rel=1e-6, abs=1e-9
    )


def test_identical_and_shifted_feature_sets():
  rng = np.random.default_rng(1)
  features = rng.normal(size=(500, 8))
  assert fid.fid_from_features(features, features) == pytest.approx(0, abs=1e-8)
  shift = np.arange(8.0)
  assert fid.fid_from_features(features, features + shift) == pytest.approx(
      np.sum(shift**2), rel=1e-8
  )


def test_stable_for_singular_covariances():
  """Fewer samples than dimensions: rank-deficient covariances."""
  rng = np.random.default_rng(2)
  first, second = rng.normal(size=(20, 64)), rng.normal(size=(20, 64)) + 0.5
  value = fid.fid_from_features(first, second)
  assert np.isfinite(value) and value > 0
  cov = random_covariance(rng, 32, rank=3)
  assert fid.frechet_distance(np.zeros(32), cov, np.zeros(32), cov) == (
      pytest.approx(0, abs=1e-8)
  )


def test_inception_pool3_architecture():
  variables = jax.eval_shape(
      inception.InceptionV3Pool3().init,
      jax.random.PRNGKey(0),
      jnp.zeros((1, 32, 32, 3)),
  )
  # torchvision's InceptionV3 without its classifier and auxiliary head.
  assert models.count_parameters(variables["params"]) == 21_785_568
  out = jax.eval_shape(
      inception.InceptionV3Pool3().apply, variables, jnp.zeros((3, 28, 28, 1))
  )
  assert out.shape == (3, 2048)


def to_state_dict(variables):
  """Flax variables -> pytorch-fid state-dict arrays (inverse of loading)."""
  arrays = {}

  def walk(tree, path, kind):
    for name, value in tree.items():
      if isinstance(value, dict):
        walk(value, path + [name], kind)
        continue
      prefix = ".".join(path)
      if kind == "params" and name == "kernel":
        arrays[f"{prefix}.weight"] = np.asarray(value).transpose(3, 2, 0, 1)
      else:
        field = {
            "scale": "weight",
            "bias": "bias",
            "mean": "running_mean",
            "var": "running_var",
        }[name]
        arrays[f"{prefix}.{field}"] = np.asarray(value)

  walk(variables["params"], [], "params")
  walk(variables["batch_stats"], [], "batch_stats")
  return arrays


def test_inception_weights_load_from_a_pytorch_fid_file(tmp_path):
  shapes = jax.eval_shape(
      inception.InceptionV3Pool3().init,
      jax.random.PRNGKey(3),
      jnp.zeros((1, 75, 75, 3)),
  )
  rng = np.random.default_rng(3)  # distinct values, without compiling init
  variables = jax.tree.map(
      lambda s: rng.standard_normal(s.shape).astype(s.dtype), shapes
  )
  arrays = to_state_dict(variables)
  assert "Mixed_7c.branch_pool.conv.weight" in arrays
  assert arrays["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
  arrays["fc.weight"] = np.zeros((1008, 2048), np.float32)  # ignored
  np.savez(tmp_path / "weights.npz", **arrays)
  loaded = inception.load_weights(str(tmp_path / "weights.npz"))
  # The same tree holding the same arrays: every pytorch-fid tensor went to
  # its Flax variable (a swap of two same-shaped ones would fail here).
  assert jax.tree.structure(loaded) == jax.tree.structure(variables)
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(loaded)):
    np.testing.assert_array_equal(a, b)
  del arrays["Mixed_5b.branch1x1.conv.weight"]
  np.savez(tmp_path / "broken.npz", **arrays)
  with pytest.raises(ValueError, match="pytorch-fid InceptionV3"):
    inception.load_weights(str(tmp_path / "broken.npz"))


@pytest.mark.slow
def test_offline_classifier_is_deterministic_and_separates(tmp_path):
  rng = np.random.default_rng(5)
  labels = rng.integers(0, 2, 400)
  images = np.where(labels[:, None, None, None] == 1, 200, 40).astype(np.uint8)
  images = np.broadcast_to(images, (400, 8, 8, 1)).copy()
  images = np.clip(images + rng.integers(-30, 30, images.shape), 0, 255).astype(
      np.uint8
  )
  config = tiny_digits_config().fid
  config.cache_dir, config.classifier_epochs = str(tmp_path), 2
  name, extract = fid_features.make_extractor(config, "toy", images, labels)
  _, again = fid_features.make_extractor(config, "toy", images, labels)
  assert name == fid_features.OFFLINE and len(os.listdir(tmp_path)) == 1
  unit = images / 255.0
  np.testing.assert_array_equal(extract(unit), again(unit))  # cached = trained
  config.cache_dir = ""
  _, retrained = fid_features.make_extractor(config, "toy", images, labels)
  np.testing.assert_allclose(retrained(unit), extract(unit), rtol=1e-6)
  same = fid.fid_from_features(extract(unit[:200]), extract(unit[200:]))
  flipped = fid.fid_from_features(
      extract(unit[labels == 0]), extract(unit[labels == 1])
  )
  assert flipped > 10 * same


@pytest.mark.slow
def test_run_reports_fid_of_samples_and_reconstructions(workdir, tmp_path):
  config = tiny_digits_config(
      **{
          "fid.enabled": True,
          "fid.num_images": 200,
          "fid.cache_dir": str(tmp_path),
          "fid.classifier_epochs": 1,
          "eval.probe_epochs": 2,
      }
  )
  results = train.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "eval.json")) as file:
    saved = json.load(file)["fid"]
  assert saved == results["fid"]
  assert saved["features"] == "offline_classifier"
  assert saved["comparable_to_inception_fid"] is False
  assert saved["num_images"] == 200
  assert saved["samples"] > 0 and saved["reconstructions"] > 0
