"""Decoders on frozen representations; the random encoder is never trained."""

import os

import jax
import numpy as np

from simvae_jax import outputs, posthoc_decoder, train
from simvae_jax.evaluation import representations
from simvae_jax.train import Experiment

from conftest import tiny_digits_config


def test_posthoc_decoder_learns_while_the_encoder_stays_frozen():
  experiment = Experiment.from_config(
      tiny_digits_config(method="simclr", **{"posthoc_decoder.num_steps": 150})
  )
  initial = experiment.initial_state()
  params, state = initial.params, initial.model_state
  images = experiment.train_source.images[:300]
  before = representations.reconstruction_mse(
      experiment.method, params, state, images, False
  )
  trained, trained_state, _ = posthoc_decoder.train_posthoc_decoder(
      experiment, params, state
  )
  after = representations.reconstruction_mse(
      experiment.method, trained, trained_state, images, False
  )
  assert after < 0.5 * before
  for part in ("encoder", "head"):
    for old, new in zip(
        jax.tree.leaves(params[part]), jax.tree.leaves(trained[part])
    ):
      np.testing.assert_array_equal(old, new)


def test_random_encoder_is_evaluated_untrained(workdir):
  config = tiny_digits_config(
      method="random", **{"posthoc_decoder.num_steps": 20}
  )
  results = train.train_and_evaluate(config, workdir)
  experiment = Experiment.from_config(config)
  restored = train.restore_latest(experiment, workdir)
  assert int(restored.step) == 0
  initial = experiment.initial_state().params
  for old, new in zip(
      jax.tree.leaves(initial["encoder"]),
      jax.tree.leaves(restored.params["encoder"]),
  ):
    np.testing.assert_array_equal(old, new)
  assert outputs.read_jsonl(os.path.join(workdir, "metrics.jsonl")) == []
  assert os.path.exists(os.path.join(workdir, "reconstructions.png"))
  assert not os.path.exists(os.path.join(workdir, "samples.png"))
  assert results["label"]["recon_mse"] > 0


def test_discriminative_reconstruction_error_only_after_decoder_training(
    workdir,
):
  config = tiny_digits_config(
      method="vicreg",
      num_steps=8,
      **{
          "eval.every_steps": 4,
          "posthoc_decoder.num_steps": 20,
          "eval.compare_untrained": False,
      },
  )
  train.train_and_evaluate(config, workdir)
  history = outputs.read_jsonl(os.path.join(workdir, "eval_history.jsonl"))
  assert [h["step"] for h in history] == [4, 8]
  assert "recon_mse" not in history[0]["label"]
  assert history[1]["label"]["recon_mse"] > 0
