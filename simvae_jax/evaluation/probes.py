"""Linear and MLP probes on frozen representations, trained in JAX.

Protocol: features are standardised with statistics of the fitting split; the
probe is trained with Adam on minibatches (one jitted ``lax.scan`` per epoch) on
train minus a seeded validation split; the epoch with the best validation
accuracy is chosen (training stops after ``patience`` epochs without
improvement) and test accuracy is computed once, with the parameters of that
epoch.
"""

from __future__ import annotations

import functools

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


def _cross_entropy(probe, params, x, y):
  logits = probe.apply({"params": params}, x)
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# One optimizer object per learning rate: it is a static argument of the jitted
# epoch, so a fresh object per call would recompile every evaluation.
_adam = functools.lru_cache(maxsize=None)(optax.adam)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _train_epoch(probe, optimizer, batch_size, params, opt_state, rng, x, y):
  """One epoch over a fresh permutation of (x [N, d], y [N]); drops the remainder."""
  num_batches = x.shape[0] // batch_size
  order = jax.random.permutation(rng, x.shape[0])[: num_batches * batch_size]
  batches = order.reshape(num_batches, batch_size)

  def step(carry, indices):
    params, opt_state = carry
    grads = jax.grad(functools.partial(_cross_entropy, probe))(
        params, x[indices], y[indices]
    )
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), batches)
  return params, opt_state


@functools.partial(jax.jit, static_argnums=(0,))
def _accuracy(probe, params, x, y):
  return jnp.mean(jnp.argmax(probe.apply({"params": params}, x), -1) == y)


def train_probe(
    train_repr,
    train_y,
    test_repr,
    test_y,
    *,
    hidden: int = 0,
    max_epochs: int = 200,
    patience: int = 20,
    batch_size: int = 64,
    learning_rate: float = 3e-4,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> dict:
  """Trains a probe with validation-chosen epoch; returns accuracies (fractions).

  Args:
    train_repr, test_repr: float [N, d] representations.
    train_y, test_y: int [N] labels.
    hidden: 0 for a linear probe, else the MLP probe's hidden width.

  Returns:
    {"acc": test accuracy, "epoch": chosen epoch (1-based), "val_acc": its
    validation accuracy}.
  """
  train_repr = np.asarray(train_repr, np.float32)
  train_y = np.asarray(train_y, np.int32)
  fit, val = validation_split(len(train_repr), val_fraction, seed)
  mean = train_repr[fit].mean(0)
  scale = train_repr[fit].std(0) + 1e-6
  standardise = lambda x: jnp.asarray(
      (np.asarray(x, np.float32) - mean) / scale
  )
  fit_x, val_x, test_x = (
      standardise(train_repr[fit]),
      standardise(train_repr[val]),
      standardise(test_repr),
  )
  fit_y, val_y = jnp.asarray(train_y[fit]), jnp.asarray(train_y[val])
  num_classes = count_classes(train_y, test_y)
  batch_size = min(batch_size, len(fit))

  probe = Probe(num_classes, hidden)
  optimizer = _adam(learning_rate)
  init_rng, rng = jax.random.split(jax.random.PRNGKey(seed))
  params = probe.init(init_rng, fit_x[:1])["params"]
  opt_state = optimizer.init(params)
  best = (-1.0, 0, params)
  for epoch in range(1, max_epochs + 1):
    params, opt_state = _train_epoch(
        probe,
        optimizer,
        batch_size,
        params,
        opt_state,
        jax.random.fold_in(rng, epoch),
        fit_x,
        fit_y,
    )
    val_acc = float(_accuracy(probe, params, val_x, val_y))
    if val_acc > best[0]:
      best = (val_acc, epoch, params)
    elif epoch - best[1] >= patience:
      break
  val_acc, epoch, params = best
  test_acc = float(_accuracy(probe, params, test_x, jnp.asarray(test_y)))
  return {"acc": test_acc, "epoch": epoch, "val_acc": val_acc}


def settings(eval_config, seed: int) -> dict:
  """``train_probe`` keyword arguments from the ``eval`` config section."""
  return dict(
      max_epochs=eval_config.probe_epochs,
      patience=eval_config.probe_patience,
      learning_rate=eval_config.probe_learning_rate,
      batch_size=eval_config.probe_batch_size,
      val_fraction=eval_config.val_fraction,
      seed=seed,
  )
