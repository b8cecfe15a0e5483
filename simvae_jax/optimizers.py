"""Optimisers and learning-rate schedules from the ``optimizer`` config section.

* ``name``: ``adam`` (the paper's: constant 8e-5, eps 1e-4), ``adamw`` (decoupled
  weight decay) or ``lars`` (layer-wise trust ratio, for the discriminative
  baselines). Weight decay and LARS's trust ratio apply to kernels only: biases
  and BatchNorm scales/offsets (every parameter of rank < 2) are left out.
* ``schedule``: ``constant`` or ``warmup_cosine`` (linear warmup over
  ``warmup_epochs``, then cosine decay to ``final_learning_rate_fraction`` x the
  peak at the end of training).
"""

from __future__ import annotations

import jax
import optax

OPTIMIZERS = ("adam", "adamw", "lars")
SCHEDULES = ("constant", "warmup_cosine")


def validate_config(config) -> None:
  if config.name not in OPTIMIZERS:
    raise ValueError(
        f"Unknown optimizer.name {config.name!r}; choose one of "
        f"{OPTIMIZERS}"
    )
  if config.schedule not in SCHEDULES:
    raise ValueError(
        f"Unknown optimizer.schedule {config.schedule!r}; choose one "
        f"of {SCHEDULES}"
    )
  if config.learning_rate <= 0:
    raise ValueError(
        f"optimizer.learning_rate must be > 0, got " f"{config.learning_rate}"
    )
  if config.weight_decay < 0 or config.warmup_epochs < 0:
    raise ValueError(
        "optimizer.weight_decay and optimizer.warmup_epochs must be >= 0"
    )


def kernel_mask(params):
  """True for parameters that get weight decay / LARS adaptation (rank >= 2)."""
  return jax.tree.map(lambda x: x.ndim >= 2, params)


def make_schedule(
    config, total_steps: int, steps_per_epoch: int
) -> optax.Schedule:
  """Learning rate as a function of the step."""
  peak = float(config.learning_rate)
  if config.schedule == "constant":
    return optax.constant_schedule(peak)
  warmup = int(round(config.warmup_epochs * steps_per_epoch))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0,
      peak_value=peak,
      warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1),
      end_value=peak * config.final_learning_rate_fraction,
  )


def make_optimizer(config, total_steps: int = 1, steps_per_epoch: int = 1):
  """(optax transformation, learning-rate schedule) from the config section."""
  validate_config(config)
  schedule = make_schedule(config, total_steps, steps_per_epoch)
  if config.name == "adam":
    optimizer = optax.adam(schedule, eps=config.eps)
  elif config.name == "adamw":
    optimizer = optax.adamw(
        schedule,
        eps=config.eps,
        weight_decay=config.weight_decay,
        mask=kernel_mask,
    )
  else:
    optimizer = optax.lars(
        schedule,
        weight_decay=config.weight_decay,
        weight_decay_mask=kernel_mask,
        trust_ratio_mask=kernel_mask,
        momentum=config.momentum,
    )
  return optimizer, schedule
