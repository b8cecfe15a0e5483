"""Prints pip constraints that pin every runtime dependency of pyproject.toml
at its lower bound (``name>=X`` -> ``name==X``), so that CI can test the
oldest versions the package claims to support.

python .ci/lowest_versions.py > constraints.txt
pip install -c constraints.txt -e ".[dev]"

Only the ``dependencies`` list is pinned (the ``dev`` extra's test tools stay
free). A dependency without a ``>=`` bound is an error: every one has one.
"""

from __future__ import annotations

import pathlib
import re
import sys
import tomllib

REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*(?P<version>[^,;\s]+)$"
)


def lowest_pins(dependencies: list[str]) -> list[str]:
  """``name==version`` for each ``name[extras]>=version`` requirement."""
  pins = []
  for requirement in dependencies:
    match = REQUIREMENT.match(requirement.strip())
    if match is None:
      raise ValueError(f"No lower bound to pin in {requirement!r}")
    pins.append(f"{match['name']}=={match['version']}")
  return pins


def main() -> None:
  pyproject = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"
  dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
  sys.stdout.write("\n".join(lowest_pins(dependencies)) + "\n")


if __name__ == "__main__":
  main()
