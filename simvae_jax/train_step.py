"""The compiled, sharded train step: augment J views on device, loss, update."""

from __future__ import annotations

import functools

import jax
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
):
  """One update on a global batch.

  Args:
    state: the replicated train state.
    batch: {"image": uint8 [B, H, W, C], "label": int32 [B]} sharded over B.

  Returns:
    (new state, metrics): the scalar ``loss``, its terms and the
    ``learning_rate`` used.
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
  new_state = state.replace(
      step=state.step + 1,
      params=params,
      model_state=model_state,
      opt_state=opt_state,
      method_state=method.after_update(method_state, params),
  )
  return new_state, {
      "loss": loss,
      **terms,
      "learning_rate": schedule(state.step),
  }


def compile_train_step(
    method,
    optimizer,
    schedule,
    num_views: int,
    augment_config,
    mesh: jax.sharding.Mesh,
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
  )
  replicated = sharding.replicated(mesh)
  return jax.jit(
      step,
      in_shardings=(replicated, sharding.batch_sharded(mesh)),
      out_shardings=(replicated, replicated),
      donate_argnums=0,
  )
