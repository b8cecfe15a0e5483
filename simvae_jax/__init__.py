"""simvae_jax: SimVAE and self-supervised baselines in JAX/Flax."""

__version__ = "0.1.0"
