"""Linear and MLP probes on frozen representations, trained together in JAX.

Protocol, per probe: features are standardised with statistics of the fitting
split; the probe is trained with Adam on minibatches on train minus a seeded
validation split; the epoch with the best validation accuracy is chosen
(training stops after ``patience`` epochs without improvement) and test
accuracy is computed once, with the parameters of that epoch.

All probes of an evaluation (the content task's MLP and linear probes, every
further task's MLP probe) train in one compiled program per epoch: probes of
the same shape and number of minibatches are stacked and ``vmap``-ed, their
examples and classes padded (padded examples are never drawn, padded classes
get no probability), each stopping on its own validation curve; a group whose
probes have all stopped skips its epochs. Each epoch's minibatch order is a
permutation of a probe's own examples drawn on the host from (seed, epoch), so
a probe's result does not depend on the others trained beside it (tested
against training each alone).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

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
class _Group:
  """Probes of one shape, stacked over a leading task axis [T, ...] and padded:
  ``x``/``y``/``mask`` hold each split's examples, ``valid_classes`` [T, C]."""

  indices: list  # positions of the group's problems in the caller's list
  probe: Probe  # with the largest number of classes of the group
  batch_size: int
  num_batches: np.ndarray  # int [T]: each probe's minibatches per epoch
  fit_sizes: np.ndarray  # int [T]: each probe's fit examples
  splits: dict  # {"fit" | "val" | "test": (x [T, N, d], y [T, N], mask [T, N])}
  valid_classes: jax.Array
  params: dict  # stacked initial parameters


def _pad(arrays: Sequence[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
  """Arrays [n_t, ...] stacked into [T, max n_t, ...] (zeros after each
  one's end) and the mask [T, max n_t] of real rows."""
  length = max(len(a) for a in arrays)
  stacked = np.zeros((len(arrays), length, *arrays[0].shape[1:]), dtype)
  mask = np.zeros((len(arrays), length), np.float32)
  for index, array in enumerate(arrays):
    stacked[index, : len(array)] = array
    mask[index, : len(array)] = 1.0
  return stacked, mask


def _initial_params(problem_classes: int, max_classes: int, hidden, x, seed):
  """The probe's initial parameters (as trained alone: seeded by ``seed``),
  its output layer padded with zero columns to ``max_classes``."""
  init_rng = jax.random.split(jax.random.PRNGKey(seed))[0]
  params = Probe(problem_classes, hidden).init(init_rng, x[:1])["params"]
  last = sorted(params)[-1]  # Dense_0 (linear) or Dense_1 (MLP)
  pad = max_classes - problem_classes
  params[last] = {
      "kernel": jnp.pad(params[last]["kernel"], ((0, 0), (0, pad))),
      "bias": jnp.pad(params[last]["bias"], (0, pad)),
  }
  return params


def _group(indices, problems, batch_size, val_fraction, seed) -> _Group:
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
  params = [
      _initial_params(c, max_classes, hidden, splits["fit"][0][i], seed)
      for i, c in enumerate(classes)
  ]
  padded = {}
  for name, (xs, ys) in splits.items():
    x, mask = _pad(xs, np.float32)
    padded[name] = (
        jnp.asarray(x),
        jnp.asarray(_pad(ys, np.int32)[0]),
        jnp.asarray(mask),
    )
  return _Group(
      indices=list(indices),
      probe=Probe(max_classes, hidden),
      batch_size=batch_size,
      num_batches=np.asarray(num_batches),
      fit_sizes=np.asarray(fit_sizes),
      splits=padded,
      valid_classes=jnp.asarray(
          np.arange(max_classes)[None] < np.asarray(classes)[:, None]
      ),
      params=jax.tree.map(lambda *p: jnp.stack(p), *params),
  )


def _logits(probe, params, x, valid_classes):
  logits = probe.apply({"params": params}, x)
  return jnp.where(valid_classes, logits, -1e9)


def _accuracy(probe, params, valid_classes, x, y, mask):
  """Accuracy of one probe over the real rows (mask) of x [N, d], y [N]."""
  correct = jnp.argmax(_logits(probe, params, x, valid_classes), -1) == y
  return jnp.sum(correct * mask) / jnp.sum(mask)


def _epoch_orders(group: "_Group", epoch: int, seed: int) -> np.ndarray:
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


def _train_group_epoch(probe, optimizer, state, orders, data):
  """One epoch of every probe of a group (vmapped over the task axis).

  ``state``: (params, opt_state, best_params, best_acc [T], active [T]);
  ``orders``: int [T, steps, batch] (``_epoch_orders``); ``data``:
  (num_batches [T], splits, valid_classes). Probes past their own number of
  minibatches, or stopped (``active`` false), keep their parameters; a group
  with no active probe skips its epoch. Returns the new state and validation
  accuracies [T].
  """
  params, opt_state, best_params, best_acc, active = state
  num_batches, splits, valid_classes = data
  (fit_x, fit_y, _), (val_x, val_y, val_mask) = splits["fit"], splits["val"]
  max_batches = orders.shape[1]

  def one_task(params, opt_state, batches, count, active, x, y, classes):

    def step(carry, inputs):
      params, opt_state = carry
      index, rows = inputs

      def loss(params):
        logits = _logits(probe, params, x[rows], classes)
        return optax.softmax_cross_entropy_with_integer_labels(
            logits, y[rows]
        ).mean()

      updates, new_opt_state = optimizer.update(
          jax.grad(loss)(params), opt_state, params
      )
      keep = active & (index < count)
      choose = lambda new, old: jnp.where(keep, new, old)
      return (
          jax.tree.map(choose, optax.apply_updates(params, updates), params),
          jax.tree.map(choose, new_opt_state, opt_state),
      ), None

    (params, opt_state), _ = jax.lax.scan(
        step, (params, opt_state), (jnp.arange(max_batches), batches)
    )
    return params, opt_state

  def train(params, opt_state):
    params, opt_state = jax.vmap(one_task)(
        params,
        opt_state,
        orders,
        num_batches,
        active,
        fit_x,
        fit_y,
        valid_classes,
    )
    val_acc = jax.vmap(functools.partial(_accuracy, probe))(
        params, valid_classes, val_x, val_y, val_mask
    )
    return params, opt_state, val_acc

  params, opt_state, val_acc = jax.lax.cond(
      jnp.any(active),
      train,
      lambda params, opt_state: (params, opt_state, best_acc),
      params,
      opt_state,
  )
  improved = active & (val_acc > best_acc)
  choose = lambda new, old: jnp.where(
      improved.reshape((-1,) + (1,) * (new.ndim - 1)), new, old
  )
  best_params = jax.tree.map(choose, params, best_params)
  best_acc = jnp.where(improved, val_acc, best_acc)
  return (params, opt_state, best_params, best_acc), val_acc


@functools.partial(jax.jit, static_argnums=(0, 1), donate_argnums=(2,))
def _train_epoch(probes, optimizer, states, orders, data):
  """One epoch of every group: a single program."""
  return tuple(
      zip(
          *[
              _train_group_epoch(*group, optimizer, state, order, group_data)
              for *group, state, order, group_data in zip(
                  probes, states, orders, data
              )
          ]
      )
  )


@functools.partial(jax.jit, static_argnums=0)
def _test_accuracy(probes, best_params, data):
  return tuple(
      jax.vmap(functools.partial(_accuracy, probe))(
          params, classes, *splits["test"]
      )
      for probe, params, (_, splits, classes) in zip(probes, best_params, data)
  )


# One optimizer object per learning rate: it is a static argument of the jitted
# epoch, so a fresh object per call would recompile every evaluation.
_adam = functools.lru_cache(maxsize=None)(optax.adam)


def train_probes(
    problems: Sequence[Problem],
    *,
    max_epochs: int = 200,
    patience: int = 20,
    batch_size: int = 64,
    learning_rate: float = 3e-4,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> list[dict]:
  """Trains every probe (see the module doc); returns, per problem,
  {"acc": test accuracy, "epoch": chosen epoch (1-based), "val_acc": its
  validation accuracy} (fractions)."""
  shapes = {}
  for index, problem in enumerate(problems):
    fit_size = len(problem.train_x) - max(
        1, int(round(val_fraction * len(problem.train_x)))
    )
    # Probes are stacked with those of the same shape and the same number of
    # minibatches per epoch (none is padded with steps it does not take).
    size = min(batch_size, fit_size)
    key = (problem.hidden, np.shape(problem.train_x)[1], size, fit_size // size)
    shapes.setdefault(key, []).append(index)
  groups = [
      _group(indices, problems, key[2], val_fraction, seed)
      for key, indices in shapes.items()
  ]
  optimizer = _adam(learning_rate)
  probes = tuple(g.probe for g in groups)
  data = tuple(
      (jnp.asarray(g.num_batches), g.splits, g.valid_classes) for g in groups
  )
  states = tuple(
      (
          g.params,
          jax.vmap(optimizer.init)(g.params),
          jax.tree.map(jnp.copy, g.params),
          jnp.full(len(g.indices), -1.0),
      )
      for g in groups
  )
  best = [(-1.0, 0)] * len(problems)  # (validation accuracy, epoch)
  active = [np.ones(len(g.indices), bool) for g in groups]
  for epoch in range(1, max_epochs + 1):
    states, val_accs = _train_epoch(
        probes,
        optimizer,
        tuple((*s[:4], jnp.asarray(a)) for s, a in zip(states, active)),
        tuple(jnp.asarray(_epoch_orders(g, epoch, seed)) for g in groups),
        data,
    )
    for group, accs, running in zip(groups, jax.device_get(val_accs), active):
      for slot, (index, acc) in enumerate(zip(group.indices, accs)):
        if not running[slot]:
          continue
        if acc > best[index][0]:
          best[index] = (float(acc), epoch)
        elif epoch - best[index][1] >= patience:
          running[slot] = False
    if not any(a.any() for a in active):
      break
  test_accs = jax.device_get(
      _test_accuracy(probes, tuple(s[2] for s in states), data)
  )
  results = [None] * len(problems)
  for group, accs in zip(groups, test_accs):
    for index, acc in zip(group.indices, accs):
      results[index] = {
          "acc": float(acc),
          "epoch": best[index][1],
          "val_acc": best[index][0],
      }
  return results


def train_probe(
    train_repr, train_y, test_repr, test_y, *, hidden: int = 0, **settings
) -> dict:
  """One probe, trained alone (``train_probes``' keyword arguments)."""
  problem = Problem(train_repr, train_y, test_repr, test_y, hidden)
  return train_probes([problem], **settings)[0]


def settings(eval_config, seed: int) -> dict:
  """``train_probes`` keyword arguments from the ``eval`` config section."""
  return dict(
      max_epochs=eval_config.probe_epochs,
      patience=eval_config.probe_patience,
      learning_rate=eval_config.probe_learning_rate,
      batch_size=eval_config.probe_batch_size,
      val_fraction=eval_config.val_fraction,
      seed=seed,
  )
