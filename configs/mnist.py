"""SimVAE on MNIST: MLP 784-2000-500-500-(2*10), J = 10 (``:authors`` for J = 2).

Variants ``:authors``, ``:quick`` and ``encoder=NAME`` combine with commas.

Offline: --config.data.source=npz --config.data.path=../shared/datasets/mnist.npz
"""

from simvae_jax.base_config import get_mnist_like_config


def get_config(arg: str | None = None):
  return get_mnist_like_config("mnist", arg)
