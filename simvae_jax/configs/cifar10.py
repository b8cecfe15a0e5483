"""SimVAE on CIFAR-10 with the released code's ResNet encoder/decoder (latent 64).

Variants: ``:authors`` (J = 2, their augmentation), ``:resnet18`` (SSL-library
encoder), ``:quick`` (a ~20-minute CPU setting: J = 4, one epoch, Adam 1e-3,
no untrained-encoder comparison, a 300-step post-hoc decoder),
``encoder=NAME``; they combine with commas, e.g. ``:quick,encoder=resnet18``.
Offline: --config.data.source=npz --config.data.path=../shared/datasets/cifar10_train_part0.npz,../shared/datasets/cifar10_train_part1.npz,../shared/datasets/cifar10_test.npz
"""

from simvae_jax import base_config

# Table 1 of the paper: {method: (MLP probe %, kNN %)}.
PAPER_TABLE1 = {
    "random": (16.3, 13.1),
    "simclr": (67.4, 64.0),
    "moco": (56.4, 54.0),
    "vicreg": (69.7, 68.3),
    "vae": (30.3, 25.6),
    "beta_vae": (36.6, 28.5),
    "cr_vae": (36.8, 28.1),
    "simvae": (51.8, 47.1),
}


def get_config(arg: str | None = None):
  variant = base_config.parse_variant(
      arg, ("paper", "authors", "resnet18", "quick")
  )
  config = base_config.natural_image_config(variant)
  config.data.name = "cifar10"
  config.data.image_shape = (32, 32, 3)
  config.data.display_name = "CIFAR-10"
  config.data.offline_files = (
      "cifar10_train_part0.npz",
      "cifar10_train_part1.npz",
      "cifar10_test.npz",
  )
  if "quick" in variant["flags"]:
    config.num_views = 4
    config.num_epochs = 1
    config.optimizer.learning_rate = 1e-3
    config.eval.compare_untrained = False
    config.posthoc_decoder.num_steps = 300
  return config
