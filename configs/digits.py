"""SimVAE on scikit-learn's bundled 8x8 digits: the offline default (~1 minute).

python -m simvae_jax.main --config=configs/digits.py --workdir=/tmp/simvae_digits
"""

from simvae_jax.base_config import get_base_config


def get_config(arg: str | None = None):
  del arg
  config = get_base_config()
  config.data.source = "digits"
  config.data.name = "digits"
  config.num_views = 4
  config.batch_size = 64
  config.num_epochs = 150
  config.augment.crop_scale = (0.6, 1.0)
  config.augment.flip = "none"        # digits are not mirror-symmetric
  config.model.encoder_hidden = (256, 256)
  config.model.decoder_hidden = (256, 256)
  config.model.latent_dim = 10
  config.likelihood.log_variance = -3.0
  config.optimizer.learning_rate = 1e-3
  config.log_every = 50
  config.checkpoint_every = 1000
  return config
