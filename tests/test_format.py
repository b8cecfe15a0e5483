"""The source tree stays formatted (pyink, Google style; see pyproject.toml)."""

import subprocess
import sys

import pytest

from conftest import REPO


def test_tree_is_formatted():
  pytest.importorskip("pyink")
  completed = subprocess.run(
      [
          sys.executable,
          "-m",
          "pyink",
          "--check",
          "--diff",
          "simvae_jax",
          "tests",
          "experiments",
          "configs",
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert completed.returncode == 0, (
      "Run `pyink simvae_jax tests experiments configs`:\n"
      + completed.stdout[-3000:]
  )
