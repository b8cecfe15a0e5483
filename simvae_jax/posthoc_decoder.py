"""Decoder training on frozen representations (discriminative methods).

After self-supervised training, a decoder learns to reconstruct un-augmented
training images from stop-gradient, inference-mode encoder outputs (per-pixel
squared error), so discriminative methods get reconstructions and a
reconstruction error like the generative ones (paper Figs. 3-4). It is not
part of the train state (self-supervised steps and their optimiser never see
it): it starts from ``method.init_decoder`` and is saved beside the
checkpoints (``posthoc_decoder.msgpack``). It is deterministic in the seed,
so ``--mode=eval`` retrains it to the same result.
"""

from __future__ import annotations

import functools

import jax
import optax
import tqdm
from etils import epath
from flax import serialization

from simvae_jax import seeding, sharding, xla_options
from simvae_jax.data import augment, pipeline
from simvae_jax.experiment import num_train_steps


def _decoder_step(
    decoder_params,
    decoder_state,
    opt_state,
    params,
    model_state,
    images,
    *,
    method,
    optimizer,
    binarize,
):
  targets = augment.preprocess(images, binarize)

  def loss_fn(decoder_params):
    return method.decoder_loss(
        {**params, "decoder": decoder_params},
        {**model_state, **decoder_state},
        targets,
    )

  (loss, new_model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      decoder_params
  )
  updates, opt_state = optimizer.update(grads, opt_state, decoder_params)
  decoder_state = {k: v for k, v in new_model_state.items() if k == "decoder"}
  return (
      optax.apply_updates(decoder_params, updates),
      decoder_state,
      opt_state,
      loss,
  )


def num_steps(experiment) -> int:
  """The decoder's steps: ``posthoc_decoder.num_steps`` if positive, else
  ``posthoc_decoder.num_epochs`` epochs of the training split, at most the
  run's own schedule (``num_steps``, or ``num_epochs`` epochs; the random
  encoder's too, although it trains nothing)."""
  config = experiment.config
  if config.posthoc_decoder.num_steps > 0:
    return int(config.posthoc_decoder.num_steps)
  examples = len(experiment.train_source)
  epochs = config.posthoc_decoder.num_epochs * pipeline.steps_per_epoch(
      examples, config.batch_size
  )
  return max(1, min(round(epochs), num_train_steps(config, examples)))


def initial_decoder(experiment):
  """(params, model_state) of the decoder at initialisation (run's seed),
  replicated over the experiment's mesh: one compiled program (run eagerly,
  op by op, the CIFAR-10 decoder's initialisation took 27 s on 2 cores)."""
  init = functools.partial(
      experiment.method.init_decoder, image_shape=experiment.image_shape
  )
  return xla_options.jit_initialisation(
      init,
      experiment.mesh,
      out_shardings=sharding.replicated(experiment.mesh),
  )(seeding.purpose_key(experiment.config.seed, "init"))


def train_posthoc_decoder(experiment, params: dict, model_state: dict):
  """Returns (params, model_state) of the SSL state's networks with the
  trained decoder added, and its final batch MSE."""
  config = experiment.config
  optimizer = optax.adam(config.posthoc_decoder.learning_rate)
  step = jax.jit(
      functools.partial(
          _decoder_step,
          method=experiment.method,
          optimizer=optimizer,
          binarize=config.augment.binarize,
      ),
      donate_argnums=(0, 1, 2),
  )
  dataset = pipeline.make_train_dataset(
      experiment.train_source,
      config.batch_size,
      seed=seeding.purpose_seed(config.seed, "posthoc_decoder_data"),
  )
  iterator = pipeline.make_train_iterator(dataset)
  decoder_params, decoder_stats = initial_decoder(experiment)
  decoder_state = {"decoder": decoder_stats} if decoder_stats else {}
  opt_state = optimizer.init(decoder_params)
  loss = float("nan")
  count = num_steps(experiment)
  for _ in tqdm.trange(
      count,
      desc=f"post-hoc decoder ({count} steps on the frozen encoder)",
      unit="step",
      mininterval=2.0,
      dynamic_ncols=True,
      disable=jax.process_index() != 0,
  ):
    batch = sharding.to_global_batch(next(iterator), experiment.mesh)
    decoder_params, decoder_state, opt_state, loss = step(
        decoder_params,
        decoder_state,
        opt_state,
        params,
        model_state,
        batch["image"],
    )
  return (
      {**params, "decoder": decoder_params},
      {**model_state, **decoder_state},
      float(loss),
  )


FILE = "posthoc_decoder.msgpack"


def save(workdir: str, params: dict, model_state: dict) -> None:
  """The trained decoder (parameters and statistics) for ``simvae_jax.load``."""
  decoder = {
      "params": params["decoder"],
      "model_state": model_state.get("decoder", {}),
  }
  (epath.Path(workdir) / FILE).write_bytes(
      serialization.to_bytes(jax.device_get(decoder))
  )


def restore(workdir: str, params: dict, model_state: dict, template):
  """(params, model_state) with the decoder saved by ``save`` added, if there
  is one; ``template``: ``initial_decoder``'s (params, model_state), or
  their shapes (``jax.eval_shape``)."""
  path = epath.Path(workdir) / FILE
  if not path.exists():
    return params, model_state
  template = {"params": template[0], "model_state": template[1]}
  decoder = serialization.from_bytes(
      jax.device_get(template), path.read_bytes()
  )
  model_state = dict(model_state)
  if decoder["model_state"]:
    model_state["decoder"] = decoder["model_state"]
  return {**params, "decoder": decoder["params"]}, model_state
