"""Pixel likelihoods p(x|z) with a fixed variance sigma_x^2 = exp(log_variance).

* ``gaussian`` (the paper): -log N(x; mean, sigma_x^2) per pixel.
* ``bernoulli`` (the authors' MNIST code): binary cross-entropy on logits divided
  by sigma_x^2, as the authors' code does; ``log_variance=0`` gives the plain
  Bernoulli negative log-likelihood.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

LIKELIHOODS = ("gaussian", "bernoulli")


def validate_config(config) -> None:
  if config.name not in LIKELIHOODS:
    raise ValueError(f"likelihood.name must be one of {LIKELIHOODS}, got "
                     f"{config.name!r}")


def negative_log_likelihood(images: jax.Array, outputs: jax.Array, name: str,
                            log_variance: float) -> jax.Array:
  """-log p(x|z) summed over pixels.

  Args:
    images: float32 [..., H, W, C] targets in [0, 1].
    outputs: float32 [..., H, W, C] decoder outputs (Gaussian means or logits).
    name: 'gaussian' or 'bernoulli'.
    log_variance: log sigma_x^2.

  Returns:
    float32 [...].
  """
  precision = math.exp(-log_variance)
  if name == "gaussian":
    per_pixel = 0.5 * (precision * jnp.square(images - outputs)
                       + log_variance + math.log(2 * math.pi))
  elif name == "bernoulli":
    per_pixel = precision * optax.sigmoid_binary_cross_entropy(outputs, images)
  else:
    raise ValueError(f"Unknown likelihood {name!r}; choose one of {LIKELIHOODS}")
  return per_pixel.sum(axis=(-3, -2, -1))


def mean_image(outputs: jax.Array, name: str) -> jax.Array:
  """The likelihood's mean in [0, 1], for showing reconstructions and samples."""
  if name == "bernoulli":
    return jax.nn.sigmoid(outputs)
  return jnp.clip(outputs, 0.0, 1.0)
