"""CI's lowest-versions environment (.ci/lowest_versions.py): every runtime
dependency of pyproject.toml pinned at its lower bound."""

import importlib.util
import tomllib

import pytest

from conftest import REPO


def load_script():
  spec = importlib.util.spec_from_file_location(
      "lowest_versions", REPO / ".ci" / "lowest_versions.py"
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_each_lower_bound_becomes_a_pin_without_extras():
  pins = load_script().lowest_pins(
      ["jax>=0.10.2", "etils[epath]>=1.9.1", "numpy >= 2.0"]
  )
  assert pins == ["jax==0.10.2", "etils==1.9.1", "numpy==2.0"]


@pytest.mark.parametrize("requirement", ["jax", "jax<0.11", "jax==0.10.2"])
def test_a_dependency_without_a_lower_bound_is_refused(requirement):
  with pytest.raises(ValueError, match="No lower bound"):
    load_script().lowest_pins([requirement])


def test_every_dependency_of_pyproject_is_pinned():
  dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())[
      "project"
  ]["dependencies"]
  pins = load_script().lowest_pins(dependencies)
  assert len(pins) == len(dependencies)
  names = {pin.split("==")[0] for pin in pins}
  assert {"jax", "flax", "optax", "orbax-checkpoint", "grain"} <= names
