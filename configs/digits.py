"""SimVAE on scikit-learn's bundled 8x8 digits: the offline default (~20 s).

python -m simvae_jax.main --config=configs/digits.py --workdir=/tmp/simvae_digits
"""

from simvae_jax.base_config import get_digits_config


def get_config(arg: str | None = None):
  del arg
  return get_digits_config()
