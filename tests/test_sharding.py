"""The sharded step gives the same losses and parameters on 1 and 8 devices."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parent

_SCRIPT = r"""
import json
import jax
import numpy as np
from conftest import tiny_digits_config
from simvae_jax import methods, sharding, train_step
from simvae_jax.data import pipeline
from simvae_jax.train import Experiment

assert jax.device_count() == 8, jax.devices()
config = tiny_digits_config(batch_size=32, num_views=4)
experiment = Experiment.from_config(config)

def run(devices, steps=3, experiment=experiment):
  config = experiment.config
  mesh = sharding.make_mesh(devices)
  state = train_step.init_train_state(experiment.method, experiment.optimizer,
                                      experiment.image_shape, config.seed, mesh)
  step_fn = train_step.compile_train_step(experiment.method, experiment.optimizer,
                                          config.num_views, config.augment, mesh)
  iterator = pipeline.make_train_iterator(pipeline.make_train_dataset(
      experiment.train_source, config.batch_size, seed=0))
  losses = []
  for _ in range(steps):
    batch = sharding.to_global_batch(next(iterator), mesh)
    state, metrics = step_fn(state, batch)
    losses.append(float(metrics["loss"]))
  shards = len(state.params["encoder"]["Dense_0"]["kernel"].sharding.device_set)
  return losses, jax.device_get(state.params), shards

losses_1, params_1, _ = run(jax.devices()[:1])
losses_8, params_8, shards = run(jax.devices())
diffs = jax.tree.leaves(jax.tree.map(
    lambda a, b: float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12)),
    params_1, params_8))
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
                                 max_param_rel_diff=max(diffs),
                                 replicated_on=shards, error=error,
                                 per_method=per_method)))
"""


@pytest.fixture(scope="module")
def result():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             PYTHONPATH=str(TESTS), JAX_PLATFORMS="cpu")
  completed = subprocess.run([sys.executable, "-c", _SCRIPT], env=env,
                             capture_output=True, text=True, timeout=600)
  assert completed.returncode == 0, completed.stderr[-3000:]
  line = [l for l in completed.stdout.splitlines() if l.startswith("RESULT")][-1]
  return json.loads(line[len("RESULT"):])


def test_same_losses_on_1_and_8_devices(result):
  assert len(result["losses_1"]) == 3
  assert result["losses_1"] != [result["losses_1"][0]] * 3   # training moves
  for one, eight in zip(result["losses_1"], result["losses_8"]):
    assert one == pytest.approx(eight, rel=1e-5)


def test_same_parameters_on_1_and_8_devices(result):
  assert result["max_param_rel_diff"] < 1e-5


def test_state_is_replicated_over_all_devices(result):
  assert result["replicated_on"] == 8


def test_indivisible_batch_is_a_clear_error(result):
  assert "not divisible" in result["error"] and "8 devices" in result["error"]


def test_every_method_is_invariant_to_the_device_count(result):
  assert set(result["per_method"]) == {"simvae", "vae", "beta_vae", "cr_vae",
                                       "simclr", "vicreg", "moco"}
  for name, (one, eight) in result["per_method"].items():
    assert one == pytest.approx(eight, rel=2e-5), name
