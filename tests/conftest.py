"""Shared fixtures: small configs and the optional offline datasets."""

import atexit
import importlib.util
import os
import pathlib
import shutil
import tempfile

# One XLA compilation cache per test session, shared with the processes the
# tests start (set before JAX is imported): many tests compile the same small
# programs, and a resumed or repeated run compiles its step again.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(
      prefix="simvae-jax-cache-"
  )
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import pytest  # pylint: disable=g-import-not-at-top

from simvae_jax.base_config import get_digits_config  # pylint: disable=g-import-not-at-top

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


def shared_dataset(name: str) -> str:
  """Path of ../shared/datasets/<name>, or skip the test when it is absent."""
  path = SHARED_DATASETS / name
  if not path.exists():
    pytest.skip(f"{path} not available")
  return str(path)


def tiny_digits_config(**overrides):
  """The digits config shrunk to a small MLP and a few steps, for fast tests."""
  config = get_digits_config()
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


@pytest.fixture
def workdir(tmp_path):
  path = tmp_path / "run"
  os.makedirs(path)
  return str(path)


def load_repo_config(name: str, arg: str | None = None):
  """``configs/<name>.py``'s get_config(arg), as the command line loads it."""
  spec = importlib.util.spec_from_file_location(
      f"configs_{name}", REPO / "configs" / f"{name}.py"
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)
