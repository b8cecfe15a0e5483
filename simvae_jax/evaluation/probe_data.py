"""The probes an evaluation trains, as data: ``Problem`` (one probe's
representations and labels), ``Group`` (probes of one shape, split,
standardised, padded and stacked for ``vmap``) and each epoch's minibatch
orders. ``probes.py`` trains them.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from simvae_jax.evaluation.common import count_classes
from simvae_jax.evaluation.knn import validation_split


class Probe(nn.Module):
  """Linear(d, C) if ``hidden`` is 0, else Linear(d, hidden)-ReLU-Linear(hidden, C)."""

  num_classes: int
  hidden: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.hidden:
      x = nn.relu(nn.Dense(self.hidden)(x))
    return nn.Dense(self.num_classes)(x)


@dataclasses.dataclass(frozen=True)
class Problem:
  """One probe to train: float representations [N, d] and int labels [N] of
  train and test; ``hidden`` 0 for a linear probe, else the MLP's width."""

  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  hidden: int = 0


@dataclasses.dataclass
class Group:
  """Probes of one shape, stacked over a leading task axis [T, ...] and padded:
  ``x``/``y``/``mask`` hold each split's examples, ``valid_classes`` [T, C]."""

  indices: list  # positions of the group's problems in the caller's list
  probe: Probe  # with the largest number of classes of the group
  classes: tuple  # each problem's number of classes
  batch_size: int
  num_batches: np.ndarray  # int [T]: each probe's minibatches per epoch
  fit_sizes: np.ndarray  # int [T]: each probe's fit examples
  splits: dict  # {"fit" | "val" | "test": (x [T, N, d], y [T, N], mask [T, N])}
  valid_classes: jax.Array


def pad(arrays: Sequence[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
  """Arrays [n_t, ...] stacked into [T, max n_t, ...] (zeros after each
  one's end) and the mask [T, max n_t] of real rows."""
  length = max(len(a) for a in arrays)
  stacked = np.zeros((len(arrays), length, *arrays[0].shape[1:]), dtype)
  mask = np.zeros((len(arrays), length), np.float32)
  for index, array in enumerate(arrays):
    stacked[index, : len(array)] = array
    mask[index, : len(array)] = 1.0
  return stacked, mask


def initial_params(
    problem_classes: int, max_classes: int, hidden: int, width: int, seed
):
  """The probe's initial parameters on inputs of ``width`` features (as
  trained alone: seeded by ``seed``), its output layer padded with zero
  columns to ``max_classes``."""
  init_rng = jax.random.split(jax.random.PRNGKey(seed))[0]
  x = jnp.zeros((1, width), jnp.float32)
  params = Probe(problem_classes, hidden).init(init_rng, x)["params"]
  last = sorted(params)[-1]  # Dense_0 (linear) or Dense_1 (MLP)
  pad = max_classes - problem_classes
  params[last] = {
      "kernel": jnp.pad(params[last]["kernel"], ((0, 0), (0, pad))),
      "bias": jnp.pad(params[last]["bias"], (0, pad)),
  }
  return params


def make_group(indices, problems, batch_size, val_fraction, seed) -> Group:
  """The problems at ``indices`` (one shape: hidden width, input width,
  batch size), split, standardised on their fit split, padded and stacked."""
  splits = {"fit": ([], []), "val": ([], []), "test": ([], [])}
  classes, num_batches, fit_sizes = [], [], []
  for index in indices:
    problem = problems[index]
    train_x = np.asarray(problem.train_x, np.float32)
    train_y = np.asarray(problem.train_y, np.int32)
    fit, val = validation_split(len(train_x), val_fraction, seed)
    mean, scale = train_x[fit].mean(0), train_x[fit].std(0) + 1e-6
    standardise = lambda x: (np.asarray(x, np.float32) - mean) / scale
    for name, (x, y) in {
        "fit": (train_x[fit], train_y[fit]),
        "val": (train_x[val], train_y[val]),
        "test": (problem.test_x, problem.test_y),
    }.items():
      splits[name][0].append(standardise(x))
      splits[name][1].append(np.asarray(y, np.int32))
    classes.append(count_classes(train_y, problem.test_y))
    num_batches.append(len(fit) // batch_size)
    fit_sizes.append(len(fit))
  max_classes = max(classes)
  hidden = problems[indices[0]].hidden
  padded = {}
  for name, (xs, ys) in splits.items():
    x, mask = pad(xs, np.float32)
    padded[name] = (
        jnp.asarray(x),
        jnp.asarray(pad(ys, np.int32)[0]),
        jnp.asarray(mask),
    )
  return Group(
      indices=list(indices),
      probe=Probe(max_classes, hidden),
      classes=tuple(classes),
      batch_size=batch_size,
      num_batches=np.asarray(num_batches),
      fit_sizes=np.asarray(fit_sizes),
      splits=padded,
      valid_classes=jnp.asarray(
          np.arange(max_classes)[None] < np.asarray(classes)[:, None]
      ),
  )


def epoch_orders(group: Group, epoch: int, seed: int) -> np.ndarray:
  """int32 [T, max batches, batch size]: each probe's minibatches of the
  epoch, a permutation of its own fit examples drawn from (seed, epoch) alone
  (so a probe's order does not depend on the probes beside it); zeros past
  its own number of minibatches."""
  steps = int(group.num_batches.max())
  orders = np.zeros((len(group.indices), steps * group.batch_size), np.int32)
  for slot, (size, count) in enumerate(zip(group.fit_sizes, group.num_batches)):
    order = np.random.default_rng((seed, epoch)).permutation(size)
    orders[slot, : count * group.batch_size] = order[: count * group.batch_size]
  return orders.reshape(len(group.indices), steps, group.batch_size)
