"""Further labelled tasks probed on the same frozen representations as the
content task (``label``): e.g. CelebA's hair colour and attributes (style).

A task maps a split's *targets* (``{"label": [N], "attributes": [N, A]}`` with
attributes in {0, 1} and the source's attribute names) to the examples it
uses and their classes. Each task gets an MLP probe and a kNN classifier
(epoch and k chosen on a validation split of train, test once) and the
majority-class baseline (the most frequent training class, on test;
``suite.evaluate``). The task set is the config field ``eval.tasks``:

* ``celeba_hair``: black / blond / brown / gray hair, on images with exactly one
  of the four;
* ``celeba_attributes``: the 20 CelebA attributes with the least class
  imbalance, one binary task each, and their mean (``attributes_mean``);
* ``style``: transformations with known answers (flips, rotations, crops,
  hue, grayscale; ``evaluation/style.py``), and their mean (``style_mean``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
# The 20 of CelebA's 40 attributes whose positive rate on the official training
# split (partition 0, 162,770 images) is closest to 1/2 (``least_imbalanced``):
# the paper's "removing those with high class imbalance".
CELEBA_ATTRIBUTES = (
    "Attractive",
    "Mouth_Slightly_Open",
    "Smiling",
    "Wearing_Lipstick",
    "High_Cheekbones",
    "Male",
    "Heavy_Makeup",
    "Wavy_Hair",
    "Oval_Face",
    "Pointy_Nose",
    "Arched_Eyebrows",
    "Big_Lips",
    "Black_Hair",
    "Big_Nose",
    "Young",
    "Straight_Hair",
    "Bags_Under_Eyes",
    "Brown_Hair",
    "Wearing_Earrings",
    "No_Beard",
)


def least_imbalanced(
    attributes: np.ndarray, names: Sequence[str], count: int = 20
) -> tuple[str, ...]:
  """The ``count`` attributes ([N, A] in {0, 1}) whose positive rate is
  closest to 1/2, most balanced first (ties in attribute order)."""
  rates = np.asarray(attributes, np.float64).mean(axis=0)
  order = np.argsort(np.abs(rates - 0.5), kind="stable")
  return tuple(names[i] for i in order[:count])


@dataclasses.dataclass(frozen=True)
class Task:
  """``select(targets, names) -> (mask [N] bool, classes [N] int)``."""

  name: str
  select: Callable


def _attribute(targets: dict, names: Sequence[str], name: str) -> np.ndarray:
  if "attributes" not in targets or name not in names:
    raise ValueError(
        f"Task needs the attribute {name!r}, which this dataset "
        f"does not have (attributes: {list(names)[:8]}...)"
    )
  return np.asarray(targets["attributes"][:, list(names).index(name)])


def _hair_colour(targets, names):
  hair = np.stack([_attribute(targets, names, n) for n in HAIR_COLOURS], axis=1)
  return hair.sum(axis=1) == 1, hair.argmax(axis=1)


def _binary(attribute: str):
  def select(targets, names):
    values = _attribute(targets, names, attribute)
    return np.ones(len(values), bool), values.astype(np.int64)

  return select


TASK_SETS = {
    "celeba_hair": lambda: [Task("hair_colour", _hair_colour)],
    "celeba_attributes": lambda: [
        Task(f"attribute/{name}", _binary(name)) for name in CELEBA_ATTRIBUTES
    ],
}


STYLE = "style"  # transformed-image tasks (evaluation/style.py)


def make_tasks(names: Sequence[str]) -> list[Task]:
  """The target tasks of the task sets ``names`` (``eval.tasks``); ``style``
  is valid too, and handled by the evaluator (its tasks need new images)."""
  valid = sorted([*TASK_SETS, STYLE])
  unknown = sorted(set(names) - set(valid))
  if unknown:
    raise ValueError(f"Unknown eval.tasks {unknown}; choose from {valid}")
  return [task for name in names if name != STYLE for task in TASK_SETS[name]()]


def select(
    tasks,
    train_repr,
    train_targets,
    test_repr,
    test_targets,
    attribute_names,
) -> dict:
  """{task name: (train representations, train classes, test
  representations, test classes)} of the examples each task uses."""
  selected = {}
  for task in tasks:
    train_mask, train_classes = task.select(train_targets, attribute_names)
    test_mask, test_classes = task.select(test_targets, attribute_names)
    selected[task.name] = (
        train_repr[train_mask],
        train_classes[train_mask],
        test_repr[test_mask],
        test_classes[test_mask],
    )
  return selected
