"""The config package: one module per dataset, ``<name>.py`` with
``get_config(arg)`` and the dataset's facts (``PAPER_TABLE1``; the rest in
its ``data`` section). The command line reads them by path
(``--config=configs/cifar10.py:quick``; ``configs/`` at the repository root
links here); code reads them by name: ``configs.load("cifar10", "quick")``.
"""

from __future__ import annotations

import importlib
import pathlib
import types


def names() -> tuple[str, ...]:
  """Every dataset with a config, e.g. ('celeba', 'cifar10', ...)."""
  here = pathlib.Path(__file__).parent
  return tuple(sorted(p.stem for p in here.glob("[!_]*.py")))


def module(name: str) -> types.ModuleType:
  """The module of dataset ``name``."""
  if name not in names():
    raise ValueError(f"Unknown dataset {name!r}; choose one of {names()}")
  return importlib.import_module(f"{__name__}.{name}")


def load(name: str, arg: str | None = None):
  """``configs/<name>.py:<arg>``, as the command line builds it."""
  return module(name).get_config(arg)
