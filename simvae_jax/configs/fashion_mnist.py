"""SimVAE on Fashion-MNIST: same architecture and schedule as configs/mnist.py.

Variants ``:authors``, ``:quick`` and ``encoder=NAME`` combine with commas.

Offline: --config.data.source=npz --config.data.path=../shared/datasets/fashion_mnist.npz
"""

from simvae_jax import base_config

# Table 1 of the paper: {method: (MLP probe %, kNN %)}.
PAPER_TABLE1 = {
    "random": (49.8, 66.5),
    "simclr": (74.9, 76.0),
    "moco": (71.2, 76.9),
    "vicreg": (73.2, 76.0),
    "vae": (80.2, 83.7),
    "beta_vae": (82.2, 86.1),
    "cr_vae": (82.6, 86.4),
    "simvae": (82.1, 86.5),
}


def get_config(arg: str | None = None):
  config = base_config.mnist_like_config(
      base_config.parse_variant(arg, ("paper", "authors", "quick"))
  )
  config.data.name = "fashion_mnist"
  config.data.image_shape = (28, 28, 1)
  config.data.display_name = "Fashion-MNIST"
  config.data.offline_files = ("fashion_mnist.npz",)
  return config
