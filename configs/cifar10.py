"""SimVAE on CIFAR-10 with the released code's ResNet encoder/decoder (latent 64).

Variants: ``:authors`` (J = 2, their augmentation), ``:resnet18`` (SSL-library
encoder), ``:quick`` (a ~20-minute CPU setting), ``encoder=NAME``; they
combine with commas, e.g. ``:quick,encoder=resnet18``.
Offline: --config.data.source=npz --config.data.path=../shared/datasets/cifar10_train_part0.npz,../shared/datasets/cifar10_train_part1.npz,../shared/datasets/cifar10_test.npz
"""

from simvae_jax.base_config import get_cifar10_config


def get_config(arg: str | None = None):
  return get_cifar10_config(arg)
