"""Decoders on frozen representations; the random encoder is never trained."""

import os

import jax
import numpy as np
import pytest

from simvae_jax import outputs, posthoc_decoder, train
from simvae_jax.data import pipeline
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
  decoder, _ = posthoc_decoder.initial_decoder(experiment)  # MLP: no stats
  assert "decoder" not in params  # not part of the SSL state
  before = representations.reconstruction_mse(
      experiment.method, {**params, "decoder": decoder}, state, images, False
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


@pytest.mark.slow
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


def test_decoder_length_follows_the_run():
  def steps(**overrides):
    config = tiny_digits_config(**{"method": "simclr", **overrides})
    experiment = Experiment.from_config(config)
    per_epoch = pipeline.steps_per_epoch(len(experiment.train_source), 32)
    return posthoc_decoder.num_steps(experiment), per_epoch

  assert steps(num_steps=3)[0] == 3  # a smoke run: no longer than itself
  count, per_epoch = steps(num_steps=0, num_epochs=5)
  assert count == 2 * per_epoch  # 2 epochs of the run's 5
  assert steps(**{"num_steps": 3, "posthoc_decoder.num_steps": 40})[0] == 40
  count, per_epoch = steps(num_steps=500, **{"posthoc_decoder.num_epochs": 0.5})
  assert count == round(per_epoch / 2)
  # The random encoder trains nothing, yet its decoder gets the schedule's
  # length.
  assert steps(method="random", num_steps=7)[0] == 7
