"""The sharded step gives the same losses and parameters on 1 and 8 devices."""

import json

import pytest

from conftest import run_on_eight_devices

_SCRIPT = r"""
import json
import jax
import numpy as np
from conftest import tiny_conv_config, tiny_digits_config
from simvae_jax import methods, sharding, train_step
from simvae_jax.train_state import init_train_state
from simvae_jax.data import pipeline
from simvae_jax.train import Experiment

assert jax.device_count() == 8, jax.devices()
config = tiny_digits_config(batch_size=32, num_views=4)
experiment = Experiment.from_config(config)

def run(devices, steps=3, experiment=experiment):
  config = experiment.config
  mesh = sharding.make_mesh(devices)
  state = init_train_state(experiment.method, experiment.optimizer,
                           experiment.image_shape, config.seed, mesh)
  steps_fn = experiment.compile_steps(mesh)
  iterator = pipeline.make_train_iterator(pipeline.make_train_dataset(
      experiment.train_source, config.batch_size, seed=0))
  losses = []
  for _ in range(steps):
    batches = train_step.stack_batches([next(iterator)], mesh)
    state, metrics = steps_fn(state, batches, True)
    losses.append(float(metrics["loss"][0]))
  shards = len(state.params["encoder"]["Dense_0"]["kernel"].sharding.device_set)
  return (losses, jax.device_get(state.params), shards,
          jax.device_get((state.model_state, state.method_state)))

def max_rel_diff(a, b):
  return max(jax.tree.leaves(jax.tree.map(
      lambda a, b: float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12)), a, b)),
      default=0.0)

def without_stem_bias(tree):
  # The released encoder's stem conv has a bias feeding straight into
  # BatchNorm: its gradient is zero up to rounding, which Adam scales to +-lr
  # steps, so it (and the stem BatchNorm's running mean, which adds it) varies
  # with the summation order; nothing after the BatchNorm depends on it
  # (test_models checks that its gradient vanishes).
  encoder = dict(tree["encoder"])
  if "Conv_0" in encoder:
    encoder["Conv_0"] = {"kernel": encoder["Conv_0"]["kernel"]}
  if "batch_stats" in encoder:
    stats = dict(encoder["batch_stats"])
    stats["BatchNorm_0"] = {"var": stats["BatchNorm_0"]["var"]}
    encoder["batch_stats"] = stats
  return dict(tree, encoder=encoder)

losses_1, params_1, _, _ = run(jax.devices()[:1])
losses_8, params_8, shards, _ = run(jax.devices())
conv = {}
for name in ("simvae", "moco"):
  conv_experiment = Experiment.from_config(
      tiny_conv_config(method=name, batch_size=32, num_views=3))
  one, eight = (run(devices, 3, conv_experiment)
                for devices in (jax.devices()[:1], jax.devices()))
  conv[name] = dict(losses=[one[0], eight[0]],
                    params=max_rel_diff(without_stem_bias(one[1]),
                                        without_stem_bias(eight[1])),
                    batch_stats=max_rel_diff(without_stem_bias(one[3][0]),
                                             without_stem_bias(eight[3][0])),
                    method_state=max_rel_diff(*(
                        {k: without_stem_bias(v) if k.startswith("key_") else v
                         for k, v in run_result[3][1].items()}
                        for run_result in (one, eight))),
                    stats_moved=max_rel_diff(
                        jax.device_get(conv_experiment.initial_state().model_state),
                        one[3][0]))
per_method = {}
for name in methods.METHODS:
  if name == "random":
    continue
  method_experiment = Experiment.from_config(
      tiny_digits_config(method=name, batch_size=32, num_views=3))
  per_method[name] = [run(jax.devices()[:1], 2, method_experiment)[0],
                      run(jax.devices(), 2, method_experiment)[0]]
try:
  sharding.check_batch_size(30, sharding.make_mesh())
  error = None
except ValueError as exc:
  error = str(exc)
print("RESULT" + json.dumps(dict(losses_1=losses_1, losses_8=losses_8,
                                 max_param_rel_diff=max_rel_diff(params_1, params_8),
                                 conv=conv,
                                 replicated_on=shards, error=error,
                                 per_method=per_method)))
"""


@pytest.fixture(scope="module")
def result():
  stdout = run_on_eight_devices(_SCRIPT)
  line = [l for l in stdout.splitlines() if l.startswith("RESULT")][-1]
  return json.loads(line[len("RESULT") :])


def test_same_losses_on_1_and_8_devices(result):
  assert len(result["losses_1"]) == 3
  assert result["losses_1"] != [result["losses_1"][0]] * 3  # training moves
  for one, eight in zip(result["losses_1"], result["losses_8"]):
    assert one == pytest.approx(eight, rel=1e-5)


def test_same_parameters_on_1_and_8_devices(result):
  assert result["max_param_rel_diff"] < 1e-5


def test_state_is_replicated_over_all_devices(result):
  assert result["replicated_on"] == 8


def test_indivisible_batch_is_a_clear_error(result):
  assert "not divisible" in result["error"] and "8 devices" in result["error"]


def test_every_method_is_invariant_to_the_device_count(result):
  assert set(result["per_method"]) == {
      "simvae",
      "vae",
      "beta_vae",
      "cr_vae",
      "simclr",
      "vicreg",
      "moco",
  }
  for name, (one, eight) in result["per_method"].items():
    assert one == pytest.approx(eight, rel=2e-5), name


@pytest.mark.parametrize("name", ["simvae", "moco"])
def test_batchnorm_networks_are_invariant_to_the_device_count(result, name):
  """BatchNorm statistics are global under jit: the loss, the parameters and
  the running averages (MoCo: also its key encoder's) match after 3 steps."""
  conv = result["conv"][name]
  for one, eight in zip(*conv["losses"]):
    assert one == pytest.approx(eight, rel=2e-5)
  assert conv["stats_moved"] > 1e-3  # the statistics were updated
  # Adam's first steps normalise gradients, so float32 summation-order noise
  # shows up at ~1e-5 of a parameter's scale; more on the zero-initialised
  # BatchNorm biases, which hold only 3 steps of ~1e-3 each: on one CPU a
  # channel of MoCo's last block differed by 3.4e-7 in 2.9e-3 (1.2e-4).
  assert conv["params"] < 3e-4
  assert conv["batch_stats"] < 1e-4
  assert conv["method_state"] < 3e-4  # MoCo's key encoder: the same biases
