"""Shared fixtures: small configs and the optional offline datasets."""

import atexit
import functools
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

# One XLA compilation cache per test session, shared with the processes the
# tests start (set before JAX is imported): many tests compile the same small
# programs, and a resumed or repeated run compiles its step again.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(
      prefix="simvae-jax-cache-"
  )
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
# The suite runs on CPU (tests/test_aot.py compiles for TPU topologies without
# a TPU backend). With libtpu installed (the tpu extra), JAX would otherwise
# probe for TPU chips in every process and log errors to stderr, where tests
# read the one-line errors of runs they start.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"
# The experiment scripts' helpers (runs.py, paper.py), tested in process.
sys.path.insert(0, str(REPO / "experiments"))

from simvae_jax import configs, methods, xla_options  # pylint: disable=g-import-not-at-top,wrong-import-position


def run_on_eight_devices(script: str, timeout: int = 600) -> str:
  """Runs a Python ``script`` in a process with 8 simulated CPU devices
  (``conftest`` and the test modules importable); returns its stdout, or
  fails the test with its stderr."""
  env = dict(
      os.environ,
      XLA_FLAGS="--xla_force_host_platform_device_count=8",
      PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]),
      JAX_PLATFORMS="cpu",
  )
  completed = subprocess.run(
      [sys.executable, "-c", script],
      env=env,
      capture_output=True,
      text=True,
      timeout=timeout,
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  return completed.stdout


def shared_dataset(name: str) -> str:
  """Path of ../shared/datasets/<name>, or skip the test when it is absent."""
  path = SHARED_DATASETS / name
  if not path.exists():
    pytest.skip(f"{path} not available")
  return str(path)


def tiny_digits_config(**overrides):
  """The digits config shrunk to a small MLP and a few steps, for fast tests."""
  config = load_repo_config("digits")
  config.num_views = 3
  config.batch_size = 32
  config.num_steps = 8
  config.model.encoders.mlp.hidden_sizes = (64,)
  config.model.decoders.mlp.hidden_sizes = (64,)
  config.model.latent_dim = 4
  config.log_every = 2
  config.checkpoint_every = 4
  config.eval.knn_ks = (1, 3, 5)
  return apply_overrides(config, overrides)


def tiny_conv_config(**overrides):
  """``tiny_digits_config`` with the released code's conv networks at tiny
  widths (BatchNorm state included): 8x8 digits fit a two-stage decoder."""
  config = tiny_digits_config()
  config.model.encoder = "resnet_authors"
  config.model.decoder = "resnet_authors"
  config.model.encoders.resnet_authors.stage_widths = (4, 8, 8)
  config.model.encoders.resnet_authors.stem_width = 8
  config.model.decoders.resnet_authors.widths = (8, 4)
  config.likelihood.mean_link = "sigmoid"
  return apply_overrides(config, overrides)


def apply_overrides(config, overrides: dict):
  """Sets dotted keys, e.g. {"eval.every_steps": 4}."""
  for key, value in overrides.items():
    target = config
    *parents, leaf = key.split(".")
    for parent in parents:
      target = target[parent]
    target[leaf] = value
  return config


@pytest.fixture(scope="module")
def conv_method():
  """(method, params, model state) of ``tiny_conv_config``'s SimVAE at
  initialisation, for 8x8x1 images."""
  method = methods.make_method(tiny_conv_config(), (8, 8, 1))
  return (method, *initialised(method, (8, 8, 1)))


def initialised(method, image_shape, seed: int = 0):
  """(params, model_state) of ``method`` from ``PRNGKey(seed)``, compiled as
  runs compile it (a tiny conv network's initialisation took 15 s eagerly,
  op by op, and 2 s compiled)."""
  init = functools.partial(method.init, image_shape=tuple(image_shape))
  return xla_options.jit_initialisation(init)(jax.random.PRNGKey(seed))


@pytest.fixture
def workdir(tmp_path):
  path = tmp_path / "run"
  os.makedirs(path)
  return str(path)


def load_repo_config(name: str, arg: str | None = None):
  """``configs/<name>.py``'s get_config(arg), as the command line loads it."""
  return configs.load(name, arg)


def params_equal(a, b) -> bool:
  """Whether two pytrees hold bitwise-equal arrays."""
  return all(
      np.array_equal(np.asarray(x), np.asarray(y))
      for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


def digits_command(workdir, steps: int, *extra) -> list[str]:
  """The command line of a small digits run: checkpoints and logs every 100
  steps, a quick final evaluation."""
  return [
      sys.executable,
      "-m",
      "simvae_jax.main",
      "--config=configs/digits.py",
      f"--workdir={workdir}",
      f"--config.num_steps={steps}",
      "--config.checkpoint_every=100",
      "--config.log_every=100",
      "--config.eval.max_train_examples=200",
      "--config.eval.compare_untrained=False",
      *extra,
  ]


def start(command) -> subprocess.Popen:
  return subprocess.Popen(
      command,
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
  )


def run(command, timeout=600, env=None) -> subprocess.CompletedProcess:
  """Runs a command from the repository root to its end, capturing output."""
  return subprocess.run(
      command,
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=timeout,
      env=env,
  )


def wait_for(path: pathlib.Path, process: subprocess.Popen, timeout=300):
  """Waits until ``path`` exists while ``process`` runs."""
  deadline = time.time() + timeout
  while not path.exists():
    if process.poll() is not None:
      raise AssertionError(
          f"exited before {path}: {process.stderr.read()[-3000:]}"
      )
    assert time.time() < deadline, f"no {path} after {timeout}s"
    time.sleep(0.02)


def digits_config(steps: int):
  """configs/digits.py as ``digits_command`` runs it."""
  config = load_repo_config("digits")
  config.num_steps, config.checkpoint_every, config.log_every = steps, 100, 100
  return config


def train_digits(workdir, steps: int):
  """The uninterrupted in-process run that ``digits_command`` should equal."""
  from simvae_jax import train  # pylint: disable=import-outside-toplevel

  experiment = train.Experiment.from_config(digits_config(steps))
  return train.train(experiment, str(workdir))


def final_digits_state(workdir, steps: int):
  """The latest checkpoint of a ``digits_command`` run."""
  from simvae_jax import train  # pylint: disable=import-outside-toplevel

  experiment = train.Experiment.from_config(digits_config(steps))
  return train.restore_latest(experiment, str(workdir))
