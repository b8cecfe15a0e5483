"""SimVAE on scikit-learn's bundled 8x8 digits: the offline default (~20 s).

Variant: ``encoder=NAME``.

python -m simvae_jax.main --config=configs/digits.py --workdir=/tmp/simvae_digits
"""

from simvae_jax import base_config

# Not in the paper.
PAPER_TABLE1 = {}


def get_config(arg: str | None = None):
  variant = base_config.parse_variant(arg, ("paper",))
  config = base_config.get_base_config()
  config.data.source = "digits"
  config.data.name = "digits"
  config.data.image_shape = (8, 8, 1)
  config.num_views = 4
  config.batch_size = 64
  config.num_epochs = 150
  config.augment.crop_scale = (0.6, 1.0)
  config.augment.flip = "none"  # digits are not mirror-symmetric
  config.model.encoders.mlp.hidden_sizes = (256, 256)
  config.model.decoders.mlp.hidden_sizes = (256, 256)
  config.model.latent_dim = 10
  config.likelihood.log_variance = -3.0
  config.optimizer.learning_rate = 1e-3
  config.log_every = 50
  if variant["encoder"]:
    config.model.encoder = variant["encoder"]
  return config
