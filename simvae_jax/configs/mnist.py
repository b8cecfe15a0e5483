"""SimVAE on MNIST: MLP 784-2000-500-500-(2*10), J = 10 (``:authors`` for J = 2).

Variants ``:authors``, ``:quick`` and ``encoder=NAME`` combine with commas
(``base_config.mnist_like_config`` says what each changes).

Offline: --config.data.source=npz --config.data.path=../shared/datasets/mnist.npz
"""

from simvae_jax import base_config

# Table 1 of the paper: {method: (MLP probe %, kNN %)}.
PAPER_TABLE1 = {
    "random": (38.1, 46.1),
    "simclr": (97.2, 97.2),
    "moco": (94.6, 94.6),
    "vicreg": (96.7, 97.0),
    "vae": (97.8, 98.0),
    "beta_vae": (98.0, 98.3),
    "cr_vae": (97.7, 98.0),
    "simvae": (98.4, 98.5),
}


def get_config(arg: str | None = None):
  config = base_config.mnist_like_config(
      base_config.parse_variant(arg, ("paper", "authors", "quick"))
  )
  config.data.name = "mnist"
  config.data.image_shape = (28, 28, 1)
  config.data.display_name = "MNIST"
  config.data.offline_files = ("mnist.npz",)
  return config
