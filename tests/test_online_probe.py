"""The online monitor: a linear probe trained inside the train step."""

import json
import os

import numpy as np
import pytest

import simvae_jax

from simvae_jax import outputs, train
from simvae_jax.experiment import Experiment

from conftest import params_equal, tiny_digits_config


@pytest.mark.parametrize(
    "method", ["simvae", pytest.param("simclr", marks=pytest.mark.slow)]
)
def test_self_supervised_training_is_bitwise_the_same_with_the_probe(
    tmp_path, method
):
  runs = {}
  for enabled in (False, True):
    config = tiny_digits_config(
        method=method,
        num_views=2,
        num_steps=6,
        **{"online_probe.enabled": enabled},
    )
    runs[enabled] = train.train(
        Experiment.from_config(config), str(tmp_path / str(enabled))
    )
  assert params_equal(runs[False].params, runs[True].params)
  assert params_equal(runs[False].opt_state, runs[True].opt_state)
  assert params_equal(runs[False].model_state, runs[True].model_state)
  assert runs[False].online_probe == {}
  assert runs[True].online_probe["params"]["kernel"].shape == (4, 10)


@pytest.mark.slow
def test_the_probe_learns_is_logged_resumes_and_is_scored_apart(tmp_path):
  overrides = {
      "online_probe.enabled": True,
      "online_probe.learning_rate": 3e-2,
      "num_steps": 60,
      "log_every": 10,
      "checkpoint_every": 30,
      "eval.every_steps": 30,
      "eval.probe_epochs": 3,
      "eval.compare_untrained": False,
  }
  straight = train.train_and_evaluate(
      tiny_digits_config(**overrides), str(tmp_path / "straight")
  )
  logged = outputs.read_jsonl(str(tmp_path / "straight" / "metrics.jsonl"))
  accuracy = [m["online/accuracy"] for m in logged]
  assert len(accuracy) == 6 and "online/loss" in logged[0]
  # Digits from the 4-d means of a SimVAE 60 steps old (kNN about 0.36):
  # well above the 1/10 of chance (s.e. about 0.016 on the 360 test digits).
  assert np.mean(accuracy) > 0.2
  online = straight["online"]
  assert online["linear_probe_acc"] > 0.25
  assert "online" in online["note"] and "online" not in straight["label"]
  history = outputs.read_jsonl(
      str(tmp_path / "straight" / "eval_history.jsonl")
  )
  assert [h["step"] for h in history] == [30, 60]
  assert all("linear_probe_acc" in h["online"] for h in history)
  # A run stopped at step 30 and resumed reaches the same probe.
  train.train_and_evaluate(
      tiny_digits_config(**{**overrides, "num_steps": 30}),
      str(tmp_path / "resumed"),
  )
  resumed = train.train_and_evaluate(
      tiny_digits_config(**overrides), str(tmp_path / "resumed")
  )
  assert resumed["online"] == online
  with open(os.path.join(tmp_path, "resumed", "eval.json")) as file:
    assert json.load(file)["online"] == online
  # simvae_jax.load reads a run whose checkpoints hold the probe.
  run = simvae_jax.load(str(tmp_path / "resumed"))
  assert run.step == 60 and run.encode(
      np.zeros((2, 8, 8, 1), np.uint8)
  ).shape == (2, 4)


def test_an_unlabelled_training_split_is_refused_in_one_line(tmp_path):
  """STL-10's protocol trains on a split without labels (-1): the online
  probe, which learns from the training batches' labels, says so."""
  rng = np.random.default_rng(0)
  path = tmp_path / "data.npz"
  np.savez(
      path,
      x_unlabelled=rng.integers(0, 256, (40, 8, 8), np.uint8),
      y_unlabelled=np.full(40, -1),
      x_test=rng.integers(0, 256, (10, 8, 8), np.uint8),
      y_test=rng.integers(0, 3, 10),
  )
  config = tiny_digits_config(
      **{
          "data.source": "npz",
          "data.path": str(path),
          "data.train_split": "unlabelled",
          "online_probe.enabled": True,
      }
  )
  with pytest.raises(ValueError, match="needs labels on the training split"):
    Experiment.from_config(config)
  config.online_probe.enabled = False
  assert len(Experiment.from_config(config).train_source) == 40
