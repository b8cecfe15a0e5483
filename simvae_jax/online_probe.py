"""The online monitor: a linear classifier trained during self-supervised
training, so a long run shows how its representation is doing.

At every step the probe sees the representations (inference mode,
``method.represent``) of the batch's **un-augmented** images, computed with
the parameters before the step's update and behind a stop-gradient, and the
batch's labels; it takes one Adam step of its own. Its inputs are
standardised per feature with running (exponential, momentum 0.99) means and
variances of the representations it has seen, kept in its state, so the
scale of a method's representation does not set its learning rate. The self-supervised
parameters and their gradients never see it (tested bitwise). Its numbers are
always named ``online/...`` and are not the offline protocol (standardised
inputs, validation-chosen epoch, frozen final encoder): read them as a trend.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from simvae_jax.data import augment


def make_optimizer(probe_config) -> optax.GradientTransformation:
  return optax.adam(probe_config.learning_rate)


def init(
    method, params, model_state, image_shape, num_classes: int, optimizer
) -> dict:
  """{"params": {"kernel": [D, C], "bias": [C]} (zeros), "opt_state",
  "statistics": {"mean": [D], "variance": [D], "count": [] (representations
  seen)}} for the method's D-dimensional representations."""
  latent_dim = jax.eval_shape(
      method.represent, params, model_state, jnp.zeros((1, *image_shape))
  ).shape[-1]
  params = {
      "kernel": jnp.zeros((latent_dim, num_classes), jnp.float32),
      "bias": jnp.zeros((num_classes,), jnp.float32),
  }
  statistics = {
      "mean": jnp.zeros((latent_dim,), jnp.float32),
      "variance": jnp.ones((latent_dim,), jnp.float32),
      "count": jnp.zeros((), jnp.float32),
  }
  return {
      "params": params,
      "opt_state": optimizer.init(params),
      "statistics": statistics,
  }


def _updated_statistics(statistics: dict, representations: jax.Array) -> dict:
  """Running mean and variance after a batch [B, D]: exponential with momentum
  0.99, debiased by the number of batches seen (the first batch sets them)."""
  momentum = jnp.minimum(0.99, statistics["count"] / (statistics["count"] + 1))
  blend = lambda old, new: momentum * old + (1 - momentum) * new
  return {
      "mean": blend(statistics["mean"], representations.mean(0)),
      "variance": blend(statistics["variance"], representations.var(0)),
      "count": statistics["count"] + 1,
  }


def logits(probe: dict, representations: jax.Array) -> jax.Array:
  """[N, D] -> [N, C], on inputs standardised by the probe's statistics."""
  statistics = probe["statistics"]
  inputs = (representations - statistics["mean"]) * jax.lax.rsqrt(
      statistics["variance"] + 1e-6
  )
  return inputs @ probe["params"]["kernel"] + probe["params"]["bias"]


def update(
    probe: dict,
    method,
    ssl_params,
    model_state,
    batch: dict,
    optimizer,
    binarize: bool,
):
  """One step of the probe on a batch {"image": uint8 [B, H, W, C], "label":
  int [B]}; returns (new probe, {"online/loss", "online/accuracy"}) with the
  loss and accuracy of the batch before the step."""
  images = augment.preprocess(batch["image"], binarize)
  representations = jax.lax.stop_gradient(
      method.represent(ssl_params, model_state, images)
  )
  labels = batch["label"]
  statistics = _updated_statistics(probe["statistics"], representations)

  def loss_fn(params):
    scores = logits(
        {"params": params, "statistics": statistics}, representations
    )
    loss = optax.softmax_cross_entropy_with_integer_labels(scores, labels)
    return loss.mean(), scores

  (loss, scores), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      probe["params"]
  )
  updates, opt_state = optimizer.update(
      grads, probe["opt_state"], probe["params"]
  )
  accuracy = jnp.mean(jnp.argmax(scores, -1) == labels)
  new_probe = {
      "params": optax.apply_updates(probe["params"], updates),
      "opt_state": opt_state,
      "statistics": statistics,
  }
  return new_probe, {"online/loss": loss, "online/accuracy": accuracy}


def test_accuracy(probe: dict, representations, labels) -> float:
  """Accuracy of the probe on test representations [N, D] and labels [N]."""
  scores = logits(probe, jnp.asarray(representations, jnp.float32))
  return float(np.mean(np.argmax(scores, -1) == np.asarray(labels)))
