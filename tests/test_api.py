"""simvae_jax.load: a trained run from Python, without the command line."""

import json
import os

import numpy as np
import pytest

import simvae_jax
from simvae_jax import train
from simvae_jax.data import sources

from conftest import tiny_conv_config, tiny_digits_config


@pytest.fixture(scope="module")
def test_images():
  config = tiny_digits_config()
  return sources.read_all(sources.load_source(config.data, "test"))


def trained(tmp_path_factory, config):
  workdir = str(tmp_path_factory.mktemp("run") / "run")
  results = train.train_and_evaluate(config, workdir)
  return workdir, results


@pytest.mark.slow
def test_generative_run_encodes_reconstructs_and_samples(
    tmp_path_factory, test_images
):
  config = tiny_conv_config(**{"eval.probe_epochs": 2})
  workdir, results = trained(tmp_path_factory, config)
  run = simvae_jax.load(workdir)
  images, _ = test_images
  assert run.step == config.num_steps and run.image_shape == (8, 8, 1)
  codes = run.encode(images[:50])
  assert codes.shape == (50, 4) and codes.dtype == np.float32
  np.testing.assert_allclose(
      run.encode(images[:10]), codes[:10], rtol=1e-5, atol=1e-6
  )  # batch-independent (BatchNorm averages)
  recon = run.reconstruct(images)
  mse = np.mean((recon - images / 255.0) ** 2)
  assert mse == pytest.approx(results["label"]["recon_mse"], rel=1e-4)
  samples = run.sample(6, seed=1)
  assert (
      samples.shape == (6, 8, 8, 1) and 0 <= samples.min() <= samples.max() <= 1
  )
  np.testing.assert_array_equal(samples, run.sample(6, seed=1))
  for name in ("latents.png", "run.json", "samples.png"):
    assert os.path.exists(os.path.join(workdir, name)), name
  with pytest.raises(ValueError, match="uint8 images"):
    run.encode(images.astype(np.float32))


@pytest.mark.slow
def test_discriminative_run_reconstructs_with_its_posthoc_decoder(
    tmp_path_factory, test_images
):
  config = tiny_digits_config(
      method="simclr",
      **{"posthoc_decoder.num_steps": 30, "eval.probe_epochs": 2},
  )
  workdir, results = trained(tmp_path_factory, config)
  run = simvae_jax.load(workdir)
  images, _ = test_images
  mse = np.mean((run.reconstruct(images) - images / 255.0) ** 2)
  assert mse == pytest.approx(results["label"]["recon_mse"], rel=1e-4)
  with pytest.raises(ValueError, match="not generative"):
    run.sample(4)
  with open(os.path.join(workdir, "run.json")) as file:
    assert json.load(file) == {"image_shape": [8, 8, 1]}


def test_load_of_an_unfinished_directory_is_a_clear_error(tmp_path):
  (tmp_path / "config.json").write_text(
      tiny_digits_config().to_json_best_effort()
  )
  with pytest.raises(FileNotFoundError, match="run.json"):
    simvae_jax.load(str(tmp_path))
