"""Trains the same few steps on 1 and on 8 simulated devices and prints what
``test_sharding.py`` compares, as one ``RESULT{json}`` line.

Run in a process with 8 CPU devices (``conftest.run_on_eight_devices``):
``sharding_probe.main(parts)`` with parts from

* ``mlp``: SimVAE on digits, 3 steps: losses, parameters, replication, and the
  error for a batch that the devices do not divide;
* ``conv``: MoCo with BatchNorm conv networks, 3 steps (its encoder's and
  key encoder's statistics);
* ``methods``: every other trained method on digits, 2 steps.
"""

from __future__ import annotations

import json

import jax
import numpy as np

from conftest import tiny_conv_config, tiny_digits_config
from simvae_jax import methods, sharding, train_step
from simvae_jax.data import pipeline
from simvae_jax.train import Experiment
from simvae_jax.train_state import init_train_state


def run(experiment, devices, steps: int = 3):
  """(losses [steps], params, devices holding the first kernel, (model_state,
  method_state)) after ``steps`` steps on a mesh of ``devices``."""
  config = experiment.config
  mesh = sharding.make_mesh(devices)
  state = init_train_state(
      experiment.method,
      experiment.optimizer,
      experiment.image_shape,
      config.seed,
      mesh,
  )
  steps_fn = experiment.compile_steps(mesh)
  iterator = pipeline.make_train_iterator(
      pipeline.make_train_dataset(
          experiment.train_source, config.batch_size, seed=0
      )
  )
  losses = []
  for _ in range(steps):
    batches = train_step.stack_batches([next(iterator)], mesh)
    state, metrics = steps_fn(state, batches, True)
    losses.append(float(metrics["loss"][0]))
  kernel = jax.tree.leaves(state.params["encoder"])[0]
  return (
      losses,
      jax.device_get(state.params),
      len(kernel.sharding.device_set),
      jax.device_get((state.model_state, state.method_state)),
  )


def max_rel_diff(a, b) -> float:
  """The largest max |a - b| / max |a| over the leaves of two trees."""
  return max(
      jax.tree.leaves(
          jax.tree.map(
              lambda a, b: float(
                  np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12)
              ),
              a,
              b,
          )
      ),
      default=0.0,
  )


def without_stem_bias(tree):
  """``tree`` without the released encoder's stem conv bias (and its stem
  BatchNorm's running mean): the bias feeds straight into BatchNorm, so its
  gradient is zero up to rounding, which Adam scales to +-lr steps that vary
  with the summation order; nothing after the BatchNorm depends on it
  (test_models checks that its gradient vanishes)."""
  encoder = dict(tree["encoder"])
  if "Conv_0" in encoder:
    encoder["Conv_0"] = {"kernel": encoder["Conv_0"]["kernel"]}
  if "batch_stats" in encoder:
    stats = dict(encoder["batch_stats"])
    stats["BatchNorm_0"] = {"var": stats["BatchNorm_0"]["var"]}
    encoder["batch_stats"] = stats
  return dict(tree, encoder=encoder)


def one_and_eight(experiment, steps: int = 3):
  return [
      run(experiment, devices, steps)
      for devices in (jax.devices()[:1], jax.devices())
  ]


def mlp() -> dict:
  experiment = Experiment.from_config(
      tiny_digits_config(batch_size=32, num_views=4)
  )
  (losses_1, params_1, _, _), (losses_8, params_8, shards, _) = one_and_eight(
      experiment
  )
  try:
    sharding.check_batch_size(30, sharding.make_mesh())
    error = None
  except ValueError as exc:
    error = str(exc)
  return dict(
      losses_1=losses_1,
      losses_8=losses_8,
      max_param_rel_diff=max_rel_diff(params_1, params_8),
      replicated_on=shards,
      error=error,
  )


def conv() -> dict:
  results = {}
  for name in ("moco",):
    experiment = Experiment.from_config(
        tiny_conv_config(method=name, batch_size=32, num_views=3)
    )
    one, eight = one_and_eight(experiment)
    key_encoders = [
        {
            k: without_stem_bias(v) if k.startswith("key_") else v
            for k, v in result[3][1].items()
        }
        for result in (one, eight)
    ]
    results[name] = dict(
        losses=[one[0], eight[0]],
        params=max_rel_diff(
            without_stem_bias(one[1]), without_stem_bias(eight[1])
        ),
        batch_stats=max_rel_diff(
            without_stem_bias(one[3][0]), without_stem_bias(eight[3][0])
        ),
        method_state=max_rel_diff(*key_encoders),
        stats_moved=max_rel_diff(
            jax.device_get(experiment.initial_state().model_state), one[3][0]
        ),
    )
  return results


# The methods whose steps ``mlp`` (SimVAE) and ``conv`` check in more depth.
CHECKED_IN_DEPTH = ("simvae", "moco")


def every_method() -> dict:
  """Losses of 2 steps on 1 and 8 devices of every other trained method."""
  losses = {}
  for name in methods.names():
    if not methods.spec(name).cls.trainable or name in CHECKED_IN_DEPTH:
      continue
    experiment = Experiment.from_config(
        tiny_digits_config(method=name, batch_size=32, num_views=3)
    )
    losses[name] = [result[0] for result in one_and_eight(experiment, 2)]
  return losses


PARTS = {"mlp": mlp, "conv": conv, "methods": every_method}


def main(parts) -> None:
  assert jax.device_count() == 8, jax.devices()
  result = {part: PARTS[part]() for part in parts}
  print("RESULT" + json.dumps(result))
