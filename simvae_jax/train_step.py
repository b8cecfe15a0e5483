"""The compiled, sharded train step: augment J views on device, loss, update.

One compiled call (a *dispatch*) runs K consecutive steps as a ``lax.scan``
over K batches (``config.steps_per_dispatch``), so a fast device is not held
back by the host dispatching one step at a time.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from simvae_jax import online_probe, sharding, xla_options
from simvae_jax.data import augment
from simvae_jax.train_state import TrainState

# Global norms computed only on diagnosed steps (those that are logged or
# checkpointed), inside a ``lax.cond``: each is a pass over a parameter-sized
# tree, and on every step the three norms of earlier versions (gradient,
# parameters, update) took a fifth of the MNIST MLP step on a CPU. Only trees
# the step materialises anyway are passed to the cond: the gradient and the
# updated parameters. The update itself stays fused into the parameter update
# (materialising it for its norm costs more than the norm).
DIAGNOSTICS = ("grad_norm", "param_norm")


def _norms(grads, params) -> dict:
  return {
      "grad_norm": optax.tree.norm(grads),
      "param_norm": optax.tree.norm(params),
  }


def _no_norms(grads, params) -> dict:
  del grads
  zero = jnp.zeros((), jax.tree.leaves(params)[0].dtype)
  return {name: zero for name in DIAGNOSTICS}


def train_step(
    state: TrainState,
    batch: dict,
    diagnose=True,
    *,
    method,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    num_views: int,
    augment_config,
    skip_nonfinite: bool = False,
    monitor_optimizer=None,
):
  """One update on a global batch.

  Args:
    state: the replicated train state.
    batch: {"image": uint8 [B, H, W, C]} sharded over B (and "label" [B]
      when the online probe is on).
    diagnose: bool scalar: compute the global norms (and the gradient's
      finiteness) at this step. Steps that are neither logged nor saved skip
      them; their ``finite`` reflects the loss only, and a non-finite gradient
      there makes the parameters, hence the next step's loss, non-finite.

    monitor_optimizer: the online probe's optimiser, or None when it is off
      (``online_probe.py``; it adds ``online/loss`` and ``online/accuracy``).

  Returns:
    (new state, metrics): the scalar ``loss`` and its terms, the
    ``learning_rate`` used, the global norms ``grad_norm`` and ``param_norm``
    (of the updated parameters; 0 when not diagnosed), and ``finite`` (1.0 if
    the loss, and the gradients where diagnosed, were finite). With
    ``skip_nonfinite`` every step is diagnosed, and a non-finite step leaves
    the state unchanged but for its step count (its batch is skipped).
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
  if skip_nonfinite:
    diagnostics = _norms(grads, params)
  else:
    diagnostics = jax.lax.cond(diagnose, _norms, _no_norms, grads, params)
  finite = jnp.isfinite(loss) & jnp.isfinite(diagnostics["grad_norm"])
  monitor, monitor_metrics = state.online_probe, {}
  if monitor_optimizer is not None:
    monitor, monitor_metrics = online_probe.update(
        monitor,
        method,
        state.params,
        state.model_state,
        batch,
        monitor_optimizer,
        augment_config.binarize,
    )
  new_state = state.replace(
      online_probe=monitor,
      step=state.step + 1,
      params=params,
      model_state=model_state,
      opt_state=opt_state,
      method_state=method.after_update(method_state, params, state.step + 1),
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
      **diagnostics,
      **monitor_metrics,
      "finite": finite.astype(jnp.float32),
  }
  return new_state, metrics


def train_steps(state: TrainState, batches: dict, diagnose_last, **step):
  """K consecutive steps in one call.

  Args:
    state: the replicated train state.
    batches: {"image": uint8 [K, B, H, W, C]}, the K global batches in
      order, sharded over B.
    diagnose_last: bool scalar: diagnose the last of the K steps (the one
      that may be logged or checkpointed).
    **step: ``train_step``'s keyword arguments.

  Returns:
    (state after the K steps, metrics stacked over steps: each [K]).
  """
  count = batches["image"].shape[0]
  diagnose = (jnp.arange(count) == count - 1) & diagnose_last
  inputs = (batches, diagnose)

  def body(state, inputs):
    batch, diagnose = inputs
    return train_step(state, batch, diagnose, **step)

  if count == 1:
    # Without the one-trip loop that lax.scan emits: XLA:CPU runs the conv
    # networks' step several times slower inside a loop (CIFAR-10 :quick:
    # 3.0 s straight, 22 s in the loop).
    state, metrics = body(state, jax.tree.map(lambda x: x[0], inputs))
    return state, jax.tree.map(lambda x: jnp.asarray(x)[None], metrics)
  return jax.lax.scan(body, state, inputs)


def compile_train_steps(
    method,
    optimizer,
    schedule,
    num_views: int,
    augment_config,
    mesh: jax.sharding.Mesh,
    skip_nonfinite: bool = False,
    monitor_optimizer=None,
):
  """``jit`` of ``train_steps`` over ``mesh``: batches sharded over their
  batch axis, state replicated and donated, metrics replicated; on CPU
  devices, ``xla_options``' training set. One program per number of steps K
  (the shape of ``batches``)."""
  steps = functools.partial(
      train_steps,
      method=method,
      optimizer=optimizer,
      schedule=schedule,
      num_views=num_views,
      augment_config=augment_config,
      skip_nonfinite=skip_nonfinite,
      monitor_optimizer=monitor_optimizer,
  )
  replicated = sharding.replicated(mesh)
  return jax.jit(
      steps,
      in_shardings=(replicated, sharding.steps_sharded(mesh), replicated),
      out_shardings=(replicated, replicated),
      donate_argnums=0,
      compiler_options=xla_options.for_mesh("training", mesh),
  )


def stack_batches(
    local_batches: list[dict], mesh: jax.sharding.Mesh, labels: bool = False
) -> dict:
  """This process's K consecutive local batches ``{"image": uint8 [b, H, W,
  C], ...}`` as the global ``{"image": uint8 [K, B, H, W, C]}`` that
  ``train_steps`` takes, with ``"label"`` [K, B] if ``labels`` (for the
  online probe). Nothing else goes to the devices (the step uses nothing
  else; each transfer costs as much as the images' own)."""
  if len(local_batches) == 1:  # a view, no copy
    stacked = {"image": local_batches[0]["image"][None]}
  else:
    stacked = {"image": np.stack([b["image"] for b in local_batches])}
  if labels:
    stacked["label"] = np.stack(
        [np.asarray(b["label"], np.int32) for b in local_batches]
    )
  return sharding.to_global_steps(stacked, mesh)


def abstract_batches(
    steps: int, batch_size: int, image_shape, mesh, labels: bool = False
) -> dict:
  """Shapes, dtypes and shardings of ``stack_batches``' output for ``steps``
  global batches of ``batch_size`` (to compile ahead of time)."""
  stacked = sharding.steps_sharded(mesh)
  batches = {
      "image": jax.ShapeDtypeStruct(
          (steps, batch_size, *image_shape), np.uint8, sharding=stacked
      )
  }
  if labels:
    batches["label"] = jax.ShapeDtypeStruct(
        (steps, batch_size), np.int32, sharding=stacked
    )
  return batches
