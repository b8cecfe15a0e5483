"""The training loop: exact resume (in process and after SIGKILL), dispatches
of K steps bitwise equal to single steps, the progress bar, after_update's
step numbers."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simvae_jax import (
    outputs,
    posthoc_decoder,
    step_loop,
    train,
    train_step,
    xla_options,
)
from simvae_jax.train import Experiment

from conftest import (
    REPO,
    load_repo_config,
    params_equal,
    tiny_conv_config,
    tiny_digits_config,
)


@pytest.mark.parametrize(
    "make_config",
    [
        pytest.param(tiny_digits_config, id="mlp"),
        pytest.param(tiny_conv_config, id="conv", marks=pytest.mark.slow),
    ],
)
def test_resume_matches_uninterrupted_run(tmp_path, make_config):
  straight = Experiment.from_config(make_config(num_steps=8))
  state_straight = train.train(straight, str(tmp_path / "straight"))
  train.train(
      Experiment.from_config(make_config(num_steps=4)),
      str(tmp_path / "restarted"),
  )
  state_resumed = train.train(
      Experiment.from_config(make_config(num_steps=8)),
      str(tmp_path / "restarted"),
  )
  assert int(state_resumed.step) == 8
  assert params_equal(state_straight.params, state_resumed.params)
  assert params_equal(state_straight.opt_state, state_resumed.opt_state)
  assert params_equal(state_straight.model_state, state_resumed.model_state)
  assert outputs.read_jsonl(
      str(tmp_path / "straight" / "metrics.jsonl")
  ) == outputs.read_jsonl(str(tmp_path / "restarted" / "metrics.jsonl"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path):
  overrides = [
      "--config.num_steps=600",
      "--config.checkpoint_every=100",
      "--config.log_every=100",
      "--config.eval.max_train_examples=200",
  ]
  killed = tmp_path / "killed"
  command = [
      sys.executable,
      "-m",
      "simvae_jax.main",
      "--config=configs/digits.py",
      f"--workdir={killed}",
      *overrides,
  ]
  process = subprocess.Popen(
      command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  deadline = time.time() + 300
  while (
      not (killed / "checkpoints" / "100").exists() and time.time() < deadline
  ):
    assert process.poll() is None, "run ended before it could be killed"
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  completed = subprocess.run(
      command, cwd=REPO, capture_output=True, text=True, timeout=600
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  assert "knn_acc" in completed.stdout

  config = load_repo_config("digits")  # the same config, built in-process
  config.num_steps, config.checkpoint_every, config.log_every = 600, 100, 100
  straight = train.train(
      Experiment.from_config(config), str(tmp_path / "straight")
  )
  resumed = train.restore_latest(Experiment.from_config(config), str(killed))
  assert params_equal(straight.params, resumed.params)
  assert outputs.read_jsonl(
      str(tmp_path / "straight" / "metrics.jsonl")
  ) == outputs.read_jsonl(str(killed / "metrics.jsonl"))


def test_the_progress_bar_counts_finished_steps_with_a_few_in_flight():
  """The host runs up to three dispatches ahead of the devices and blocks
  only on the oldest; the bar counts a dispatch's steps once it finished."""

  class Bar:
    n = 0

    def update(self, steps):
      self.n += steps

  bar = Bar()
  progress = step_loop._Progress(bar, max_in_flight=3)  # pylint: disable=protected-access
  for dispatch in range(1, 7):
    progress.dispatched({"loss": jnp.float32(dispatch)}, steps=4)
    assert bar.n == 4 * max(0, dispatch - 3)
    assert len(progress.in_flight) == min(dispatch, 3)
  progress.finish()
  assert bar.n == 24 and not progress.in_flight


def test_dispatches_end_on_multiples_of_k_and_at_the_last_step():
  assert list(train.dispatch_ends(0, 10, 4)) == [4, 8, 10]
  assert list(train.dispatch_ends(0, 8, 1)) == list(range(1, 9))
  # A run resumed at step 6 with K = 4 realigns: 8, then 12 and the end.
  assert list(train.dispatch_ends(6, 13, 4)) == [8, 12, 13]
  assert list(train.dispatch_ends(13, 13, 4)) == []


@pytest.mark.slow
@pytest.mark.parametrize("method", ["simvae", "moco"])
def test_k_steps_per_dispatch_equal_k_single_steps(tmp_path, method):
  """K steps fused into one compiled call (lax.scan) give bitwise the same
  run as one step per call: parameters, optimiser and method state (MoCo's
  queue and momentum encoder), and the logged metrics (the last dispatch is
  shorter: 10 = 4 + 4 + 2)."""
  overrides = dict(
      method=method, num_views=2, num_steps=10, log_every=4, checkpoint_every=8
  )
  single = train.train(
      Experiment.from_config(tiny_digits_config(**overrides)),
      str(tmp_path / "single"),
  )
  fused = train.train(
      Experiment.from_config(
          tiny_digits_config(steps_per_dispatch=4, **overrides)
      ),
      str(tmp_path / "fused"),
  )
  assert params_equal(single.params, fused.params)
  assert params_equal(single.opt_state, fused.opt_state)
  assert params_equal(single.method_state, fused.method_state)
  logged = [
      outputs.read_jsonl(str(tmp_path / name / "metrics.jsonl"))
      for name in ("single", "fused")
  ]
  assert [m["step"] for m in logged[0]] == [4, 8, 10]
  assert logged[0] == logged[1]
  assert sorted(os.listdir(tmp_path / "fused" / "checkpoints")) == ["10", "8"]


@pytest.mark.parametrize("per_dispatch", [1, 3])
def test_after_update_receives_each_step_number(tmp_path, per_dispatch):
  """``after_update`` gets the step just taken (1, 2, ...), so a method can
  schedule its momentum (BYOL): a method that sums them has 1 + ... + 6 = 21
  after 6 steps, one per call or fused three per call."""
  experiment = Experiment.from_config(
      tiny_digits_config(
          num_steps=6,
          log_every=3,
          checkpoint_every=6,
          steps_per_dispatch=per_dispatch,
      )
  )
  base = experiment.method

  class SumsSteps(type(base)):

    def init_method_state(self, params, model_state, rng):
      return {"sum": jnp.zeros((), jnp.int32)}

    def after_update(self, method_state, params, step):
      return {"sum": method_state["sum"] + step}

  fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
  experiment = dataclasses.replace(experiment, method=SumsSteps(**fields))
  state = train.train(experiment, str(tmp_path))
  assert int(state.method_state["sum"]) == 21


def test_intervals_must_be_multiples_of_the_steps_per_dispatch():
  with pytest.raises(ValueError, match="log_every=6 is not a multiple of"):
    train.validate_config(tiny_digits_config(steps_per_dispatch=4, log_every=6))
  with pytest.raises(ValueError, match="steps_per_dispatch must be >= 1"):
    train.validate_config(tiny_digits_config(steps_per_dispatch=0))


@pytest.mark.parametrize(
    "make_config",
    [
        # Method state (key encoder, queue) and the online probe's state.
        lambda: tiny_digits_config(
            method="moco", **{"online_probe.enabled": True}
        ),
        # Conv encoder and decoder with BatchNorm state.
        pytest.param(tiny_conv_config, marks=pytest.mark.slow),
    ],
    ids=["moco_online_probe", "conv_simvae"],
)
def test_the_cpu_initialisation_options_keep_the_initial_state_bitwise(
    monkeypatch, make_config
):
  """The initial train state (and a discriminative method's post-hoc
  decoder) compiled with ``xla_options``' initialisation set (LLVM -O1) and
  with XLA's defaults: the same values, bit for bit."""
  experiment = Experiment.from_config(make_config())

  def initial():
    xla_options.cpu_options.cache_clear()
    state = experiment.initial_state()
    if experiment.method.generative:
      return jax.device_get(state)
    return jax.device_get((state, posthoc_decoder.initial_decoder(experiment)))

  try:
    ours = initial()
    monkeypatch.setitem(xla_options.OPTION_SETS, "initialisation", {})
    plain = initial()
  finally:
    xla_options.cpu_options.cache_clear()
  assert params_equal(ours, plain)


STEP_CONFIGS = {
    "tiny_simvae": lambda: tiny_digits_config(method="simvae", num_views=2),
    "tiny_moco": lambda: tiny_digits_config(method="moco", num_views=2),
    # The README's main run. At its sizes (256-wide layers, 64 images x 4
    # views) the XLA of jax 0.8.0 and 0.8.1 miscompiled the step with region
    # analysis on an AVX-512 CPU (parameters off by up to 1.7e-3 after two
    # steps, and the run diverged), hence the bound jax >= 0.8.2; the tiny
    # configs passed there.
    "digits": lambda: load_repo_config("digits"),
}


@pytest.mark.parametrize("name", list(STEP_CONFIGS))
def test_the_cpu_training_options_keep_the_step_bitwise(monkeypatch, name):
  """Two steps compiled with ``xla_options``' training set (copy insertion by
  region analysis) and with XLA's defaults: the same state, bit for bit,
  and without per-step copies of the donated parameters. (The XLA of jax
  0.10 copies them under its defaults and that of jax 0.4.36 did not, so only
  the training set's program is held to having none.)"""
  experiment = Experiment.from_config(STEP_CONFIGS[name]())
  images = experiment.train_source.read(
      np.arange(experiment.config.batch_size)
  )["image"]
  batches = train_step.stack_batches([{"image": images}], experiment.mesh)

  def two_steps():
    xla_options.cpu_options.cache_clear()
    state = experiment.initial_state()
    compiled = (
        experiment.compile_steps()
        .lower(state, batches, np.bool_(True))
        .compile()
    )
    for _ in range(2):
      state, _ = compiled(state, batches, np.bool_(True))
    copies = [
        line
        for line in compiled.as_text().splitlines()
        if " copy(%state_params" in line
    ]
    return jax.device_get(state), copies

  try:
    ours, our_copies = two_steps()
    monkeypatch.setitem(xla_options.OPTION_SETS, "training", {})
    plain, _ = two_steps()
  finally:
    xla_options.cpu_options.cache_clear()
  for tree in ("params", "opt_state", "method_state", "model_state"):
    assert params_equal(getattr(ours, tree), getattr(plain, tree)), tree
  if xla_options.cpu_options("training") is not None:
    assert not our_copies, our_copies[:2]
