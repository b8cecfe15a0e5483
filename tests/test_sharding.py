"""The sharded step gives the same losses and parameters on 1 and 8 devices."""

import json

import pytest

import sharding_probe
from conftest import run_on_eight_devices

from simvae_jax import methods


def probe(*parts: str) -> dict:
  """``sharding_probe.main(parts)``'s result, from a process with 8 devices."""
  stdout = run_on_eight_devices(
      f"import sharding_probe; sharding_probe.main({list(parts)!r})"
  )
  line = [l for l in stdout.splitlines() if l.startswith("RESULT")][-1]
  return json.loads(line[len("RESULT") :])


@pytest.fixture(scope="module")
def result():
  return probe("mlp")["mlp"]


@pytest.fixture(scope="module")
def slow_result():
  return probe("conv", "methods")


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


@pytest.mark.slow
def test_every_method_is_invariant_to_the_device_count(slow_result):
  trained = [n for n in methods.names() if methods.spec(n).cls.trainable]
  checked = [*slow_result["methods"], *sharding_probe.CHECKED_IN_DEPTH]
  assert sorted(checked) == sorted(trained)
  for name, (one, eight) in slow_result["methods"].items():
    assert one == pytest.approx(eight, rel=2e-5), name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["moco"])
def test_batchnorm_networks_are_invariant_to_the_device_count(
    slow_result, name
):
  """BatchNorm statistics are global under jit: the loss, the parameters and
  the running averages (MoCo: also its key encoder's) match after 3 steps."""
  conv = slow_result["conv"][name]
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
