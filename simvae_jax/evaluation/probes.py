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

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from simvae_jax.evaluation import probe_data
from simvae_jax.evaluation.probe_data import Problem


def _logits(probe, params, x, valid_classes):
  logits = probe.apply({"params": params}, x)
  return jnp.where(valid_classes, logits, -1e9)


def _accuracy(probe, params, valid_classes, x, y, mask):
  """Accuracy of one probe over the real rows (mask) of x [N, d], y [N]."""
  correct = jnp.argmax(_logits(probe, params, x, valid_classes), -1) == y
  return jnp.sum(correct * mask) / jnp.sum(mask)


def _train_group_epoch(probe, optimizer, state, orders, data):
  """One epoch of every probe of a group (vmapped over the task axis).

  ``state``: (params, opt_state, best_params, best_acc [T], active [T]);
  ``orders``: int [T, steps, batch] (``probe_data.epoch_orders``); ``data``:
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


@functools.partial(jax.jit, static_argnums=(0, 1))
def _initial_states(optimizer, shapes: tuple, seed):
  """Each group's (stacked initial parameters, optimizer state, best
  parameters so far, best validation accuracy [T]), all in one program (not
  one per operation). ``shapes``: per group, (each probe's classes, hidden
  width, input width)."""
  states = []
  for classes, hidden, width in shapes:
    params = jax.tree.map(
        lambda *p: jnp.stack(p),
        *[
            probe_data.initial_params(c, max(classes), hidden, width, seed)
            for c in classes
        ],
    )
    states.append(
        (
            params,
            jax.vmap(optimizer.init)(params),
            jax.tree.map(jnp.copy, params),
            jnp.full(len(classes), -1.0),
        )
    )
  return tuple(states)


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
      probe_data.make_group(indices, problems, key[2], val_fraction, seed)
      for key, indices in shapes.items()
  ]
  optimizer = _adam(learning_rate)
  probes = tuple(g.probe for g in groups)
  data = tuple(
      (jnp.asarray(g.num_batches), g.splits, g.valid_classes) for g in groups
  )
  states = _initial_states(
      optimizer,
      tuple(
          (g.classes, g.probe.hidden, g.splits["fit"][0].shape[2])
          for g in groups
      ),
      seed,
  )
  best = [(-1.0, 0)] * len(problems)  # (validation accuracy, epoch)
  active = [np.ones(len(g.indices), bool) for g in groups]
  for epoch in range(1, max_epochs + 1):
    states, val_accs = _train_epoch(
        probes,
        optimizer,
        tuple((*s[:4], jnp.asarray(a)) for s, a in zip(states, active)),
        tuple(
            jnp.asarray(probe_data.epoch_orders(g, epoch, seed)) for g in groups
        ),
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
