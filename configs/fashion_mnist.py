"""SimVAE on Fashion-MNIST: same architecture and schedule as configs/mnist.py.

Offline: --config.data.source=npz --config.data.path=../shared/datasets/fashion_mnist.npz
"""

from simvae_jax.base_config import get_mnist_like_config


def get_config(arg: str | None = None):
  return get_mnist_like_config("fashion_mnist", arg)
