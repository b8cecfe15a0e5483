"""Optimiser options: schedules, decay masks, LARS, and the logged rate."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from simvae_jax import optimizers, outputs, posthoc_decoder, train
from simvae_jax.base_config import get_base_config

from simvae_jax.experiment import Experiment

from conftest import params_equal, tiny_conv_config, tiny_digits_config


def optimizer_config(**overrides):
  config = get_base_config().optimizer
  config.update(overrides)
  return config


def test_default_is_the_papers_constant_adam():
  config = get_base_config().optimizer
  assert (config.name, config.learning_rate, config.eps, config.schedule) == (
      "adam",
      8e-5,
      1e-4,
      "constant",
  )
  _, schedule = optimizers.make_optimizer(config, total_steps=100)
  assert float(schedule(0)) == float(schedule(99)) == pytest.approx(8e-5)


def test_warmup_cosine_schedule():
  config = optimizer_config(
      schedule="warmup_cosine",
      learning_rate=1e-3,
      warmup_epochs=2,
      final_learning_rate_fraction=0.1,
  )
  _, schedule = optimizers.make_optimizer(
      config, total_steps=100, steps_per_epoch=10
  )
  assert float(schedule(0)) == 0.0
  assert float(schedule(10)) == pytest.approx(5e-4)  # half-way through warmup
  assert float(schedule(20)) == pytest.approx(1e-3)  # peak after 2 epochs
  middle = 20 + 40  # half-way through the cosine: (peak + end) / 2
  assert float(schedule(middle)) == pytest.approx(0.55e-3, rel=1e-3)
  assert float(schedule(100)) == pytest.approx(1e-4)


@pytest.mark.parametrize("name", ["adamw", "lars"])
def test_weight_decay_spares_biases_and_batchnorm(name):
  """With zero gradients, only decay moves parameters: kernels shrink,
  rank-1 parameters (biases, BatchNorm scales and offsets) stay."""
  config = optimizer_config(name=name, learning_rate=0.1, weight_decay=0.5)
  optimizer, _ = optimizers.make_optimizer(config, total_steps=10)
  params = {
      "Dense_0": {"kernel": jnp.ones((3, 4)), "bias": jnp.ones(4)},
      "BatchNorm_0": {"scale": jnp.ones(4), "bias": jnp.ones(4)},
  }
  zero = jax.tree.map(jnp.zeros_like, params)
  updates, _ = optimizer.update(zero, optimizer.init(params), params)
  new = optax.apply_updates(params, updates)
  assert float(jnp.max(new["Dense_0"]["kernel"])) < 1.0
  for leaf in (
      new["Dense_0"]["bias"],
      new["BatchNorm_0"]["scale"],
      new["BatchNorm_0"]["bias"],
  ):
    np.testing.assert_array_equal(leaf, 1.0)


@pytest.mark.parametrize(
    "overrides",
    [dict(name="sgd"), dict(schedule="step"), dict(learning_rate=0)],
)
def test_bad_optimizer_settings_are_rejected(overrides):
  with pytest.raises(ValueError):
    optimizers.validate_config(optimizer_config(**overrides))


@pytest.mark.slow
def test_learning_rate_is_logged_and_lars_trains(workdir):
  config = tiny_conv_config(
      method="simclr",
      num_steps=6,
      log_every=2,
      **{
          "optimizer.name": "lars",
          "optimizer.learning_rate": 0.3,
          "optimizer.weight_decay": 1e-6,
          "optimizer.schedule": "warmup_cosine",
          "optimizer.warmup_epochs": 0.1,  # 4 of the 44 steps per epoch
      },
  )
  experiment = train.Experiment.from_config(config)
  state = train.train(experiment, workdir)
  logged = outputs.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  rates = [m["learning_rate"] for m in logged]
  assert rates == pytest.approx(
      [float(experiment.schedule(s - 1)) for s in (2, 4, 6)]
  )
  assert rates[0] < rates[1]  # warming up
  assert all(np.isfinite(m["loss"]) for m in logged)
  assert int(state.step) == 6


@pytest.mark.parametrize(
    "name", ["lars", pytest.param("adamw", marks=pytest.mark.slow)]
)
def test_self_supervised_steps_leave_the_posthoc_decoder_untouched(
    tmp_path, name
):
  """The post-hoc decoder is trained after SSL; its loss never reaches it
  during SSL, but weight decay did while it lived in the train state (under
  LARS, lr 0.3, wd 1e-6, a kernel shrank to 4.7% of its value in 1,000
  steps). Now the state and its optimiser hold no decoder: SimCLR, 5 steps
  at a weight decay large enough to show, trains encoder and head, and the
  decoder the post-hoc training starts from is the initial one, bitwise."""
  config = tiny_digits_config(
      method="simclr",
      num_views=2,
      num_steps=5,
      **{
          "optimizer.name": name,
          "optimizer.learning_rate": 0.3,
          "optimizer.weight_decay": 0.5,
      },
  )
  experiment = Experiment.from_config(config)
  initial = jax.device_get(experiment.initial_state().params)
  decoder_before, _ = posthoc_decoder.initial_decoder(experiment)
  state = train.train(experiment, str(tmp_path))
  assert set(state.params) == {"encoder", "head"}
  paths = [
      jax.tree_util.keystr(path)
      for path, _ in jax.tree_util.tree_flatten_with_path(state.opt_state)[0]
  ]
  assert paths and not [p for p in paths if "decoder" in p]
  for part in ("encoder", "head"):
    assert not params_equal(initial[part], state.params[part])
  decoder_after, _ = posthoc_decoder.initial_decoder(experiment)
  assert params_equal(decoder_before, decoder_after)
