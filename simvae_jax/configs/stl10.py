"""SimVAE on STL-10 at 96x96 (tfds ``stl10``), by its standard protocol.

Self-supervised training on the 100,000-image ``unlabelled`` split; probes,
kNN and GMM fit on the 5,000 labelled ``train`` images (a validation part held
out) and are scored on the 8,000 ``test`` images. The networks and views are
``base_config.natural_image_config``'s (the released code's conv networks at
96 px: 4x4 stem, 6x6 decoder maps). Not in the paper.

Variants: ``:authors`` (J = 2, their augmentation), ``:resnet18``, ``:quick``
(J = 2, one epoch over a fixed 20,000 unlabelled images, Adam 1e-3, a
300-step post-hoc decoder: a CPU setting), ``encoder=NAME``; they combine
with commas. Offline: ``python -m simvae_jax.data.export --dataset=stl10
--splits=unlabelled,train,test --out=stl10.npz`` on a machine with tfds's
copy, then --config.data.source=npz --config.data.path=stl10.npz.
"""

from simvae_jax import base_config

# Not in the paper.
PAPER_TABLE1 = {}


def get_config(arg: str | None = None):
  variant = base_config.parse_variant(
      arg, ("paper", "authors", "resnet18", "quick")
  )
  config = base_config.natural_image_config(variant)
  config.data.name = "stl10"
  config.data.image_shape = (96, 96, 3)
  config.data.display_name = "STL-10"
  config.data.train_split = "unlabelled"
  config.data.probe_split = "train"
  config.data.test_split = "test"
  config.data.offline_files = ("stl10.npz",)
  if "quick" in variant["flags"]:
    config.num_views = 2
    config.num_epochs = 1
    config.data.train_subset = 20000
    config.optimizer.learning_rate = 1e-3
    config.eval.compare_untrained = False
    config.posthoc_decoder.num_steps = 300
  return config
