"""SimVAE on CelebA (64x64, content: gender; style: hair colour, 20 attributes).

``base_config.natural_image_config`` with the networks at 64 px (4x4 stem,
1,757,632-parameter encoder), faces centre-cropped to 140 px and resized to 64,
content label ``Male``, and the style tasks (hair colour, the 20 least
imbalanced attributes) in every evaluation.

Data: tfds ``celeb_a`` (default), or the standard distribution's folder:
--config.data.source=celeba_folder --config.data.path=DIR (DIR holds
img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt).
Variants: ``:authors`` (J = 2, their augmentation), ``:quick`` (J = 2, one
epoch over a fixed 20,000-image subset, Adam 1e-3, evaluation on 10,000
training images: a CPU setting), ``encoder=NAME``; they combine with commas,
e.g. ``:quick,encoder=resnet18``.
"""

from simvae_jax import base_config

# Table 1 of the paper: {method: (MLP probe %, kNN %)} on gender.
PAPER_TABLE1 = {
    "random": (83.5, 80.0),
    "simclr": (93.7, 91.6),
    "moco": (89.7, 88.6),
    "vicreg": (94.7, 92.7),
    "vae": (89.0, 86.9),
    "beta_vae": (93.4, 92.0),
    "cr_vae": (93.1, 91.6),
    "simvae": (95.6, 93.2),
}


def get_config(arg: str | None = None):
  variant = base_config.parse_variant(arg, ("paper", "authors", "quick"))
  config = base_config.natural_image_config(variant)
  config.data.name = "celeb_a"
  config.data.display_name = "CelebA"
  config.data.label_key = "attributes/Male"
  config.data.center_crop = 140
  config.data.image_size = 64
  config.eval.tasks = ("celeba_hair", "celeba_attributes")
  if "quick" in variant["flags"]:
    config.num_views = 2
    config.num_epochs = 1
    config.data.train_subset = 20000
    config.optimizer.learning_rate = 1e-3
    config.eval.max_train_examples = 10000
    config.eval.compare_untrained = False
    config.posthoc_decoder.num_steps = 300
  return config
