"""The compiled, sharded train step: augment J views on device, loss, update."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from simvae_jax import sharding
from simvae_jax.data import augment
from simvae_jax.train_state import TrainState


def train_step(
    state: TrainState,
    batch: dict,
    *,
    method,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    num_views: int,
    augment_config,
    skip_nonfinite: bool = False,
):
  """One update on a global batch.

  Args:
    state: the replicated train state.
    batch: {"image": uint8 [B, H, W, C], "label": int32 [B]} sharded over B.

  Returns:
    (new state, metrics): the scalar ``loss`` and its terms, the
    ``learning_rate`` used, the global norms ``grad_norm``, ``param_norm`` and
    ``update_norm``, and ``finite`` (1.0 if the loss and gradients were finite).
    With ``skip_nonfinite`` a non-finite step leaves the state unchanged but
    for its step count (its batch is skipped).
  """
  step_rng = jax.random.fold_in(state.rng, state.step)
  augment_rng, loss_rng = jax.random.split(step_rng)
  views = augment.augment_views(
      augment_rng, batch["image"], num_views, augment_config
  )
  grad_fn = jax.value_and_grad(method.loss, has_aux=True)
  (loss, (terms, model_state, method_state)), grads = grad_fn(
      state.params, state.model_state, state.method_state, views, loss_rng
  )
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  new_state = state.replace(
      step=state.step + 1,
      params=params,
      model_state=model_state,
      opt_state=opt_state,
      method_state=method.after_update(method_state, params),
  )
  if skip_nonfinite:
    keep = lambda new, old: jnp.where(finite, new, old)
    new_state = jax.tree.map(
        keep, new_state, state.replace(step=state.step + 1)
    )
  metrics = {
      "loss": loss,
      **terms,
      "learning_rate": schedule(state.step),
      "grad_norm": grad_norm,
      "param_norm": optax.tree.norm(state.params),
      "update_norm": optax.tree.norm(updates),
      "finite": finite.astype(jnp.float32),
  }
  return new_state, metrics


def compile_train_step(
    method,
    optimizer,
    schedule,
    num_views: int,
    augment_config,
    mesh: jax.sharding.Mesh,
    skip_nonfinite: bool = False,
):
  """``jit`` of ``train_step`` over ``mesh``: batch sharded, state replicated
  and donated, metrics replicated."""
  step = functools.partial(
      train_step,
      method=method,
      optimizer=optimizer,
      schedule=schedule,
      num_views=num_views,
      augment_config=augment_config,
      skip_nonfinite=skip_nonfinite,
  )
  replicated = sharding.replicated(mesh)
  return jax.jit(
      step,
      in_shardings=(replicated, sharding.batch_sharded(mesh)),
      out_shardings=(replicated, replicated),
      donate_argnums=0,
  )
