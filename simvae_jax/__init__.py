"""simvae_jax: SimVAE and self-supervised baselines in JAX/Flax."""

import jax

# Random draws shaped like the batch (e.g. [B, J] crop parameters) are then
# computed shard by shard with the same values on any number of devices (the
# default since JAX 0.5; set here for older versions too).
jax.config.update("jax_threefry_partitionable", True)

__version__ = "0.1.0"


def __getattr__(name):
  # ``simvae_jax.load`` without importing the whole package at ``import simvae_jax``.
  if name == "load":
    from simvae_jax.api import load  # pylint: disable=import-outside-toplevel

    return load
  raise AttributeError(f"module 'simvae_jax' has no attribute {name!r}")
