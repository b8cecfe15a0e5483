"""SimVAE on CelebA (64x64, content: gender; style: hair colour, 20 attributes).

Data: tfds ``celeb_a`` (default), or the standard distribution's folder:
--config.data.source=celeba_folder --config.data.path=DIR (DIR holds
img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt).
Variants: ``:authors`` (J = 2, their augmentation), ``:quick`` (a CPU setting),
``encoder=NAME``; they combine with commas, e.g. ``:quick,encoder=resnet18``.
"""

from simvae_jax.base_config import get_celeba_config


def get_config(arg: str | None = None):
  return get_celeba_config(arg)
