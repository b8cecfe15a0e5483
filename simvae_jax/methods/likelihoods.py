"""Pixel likelihoods p(x|z) with a fixed variance sigma_x^2 = exp(log_variance).

* ``gaussian`` (the paper): -log N(x; mean, sigma_x^2) per pixel. The mean is the
  decoder output (``mean_link="identity"``) or its sigmoid (``"sigmoid"``, as
  the released code's convolutional decoder).
* ``bernoulli`` (the released code's MNIST setting): binary cross-entropy on
  logits divided by sigma_x^2, as that code does; ``log_variance=0`` gives the
  plain Bernoulli negative log-likelihood.

Decoder outputs arrive in float32 (``models.apply_network`` casts them), so the
likelihood is float32 under bfloat16 networks too.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

LIKELIHOODS = ("gaussian", "bernoulli")
MEAN_LINKS = ("identity", "sigmoid")


def binary_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """-[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))] = softplus(l) - t l,
  elementwise: one softplus per pixel, stable for every l, its gradient
  sigmoid(l) - t. optax's form (two log-sigmoids) takes 2.2x as long for
  value and gradient (3.3 against 1.5 ms for the MNIST step's 640 x 784
  pixels on 2 cores)."""
  return jax.nn.softplus(logits) - targets * logits


@dataclasses.dataclass(frozen=True)
class Likelihood:
  name: str
  log_variance: float
  mean_link: str = "identity"

  def __post_init__(self):
    if self.name not in LIKELIHOODS:
      raise ValueError(
          f"likelihood.name must be one of {LIKELIHOODS}, got " f"{self.name!r}"
      )
    if self.mean_link not in MEAN_LINKS:
      raise ValueError(
          f"likelihood.mean_link must be one of {MEAN_LINKS}, got "
          f"{self.mean_link!r}"
      )

  def negative_log_likelihood(
      self, images: jax.Array, outputs: jax.Array
  ) -> jax.Array:
    """-log p(x|z) summed over pixels.

    Args:
      images: float32 [..., H, W, C] targets in [0, 1].
      outputs: float32 [..., H, W, C] decoder outputs (logits or pre-link means).

    Returns:
      float32 [...].
    """
    precision = math.exp(-self.log_variance)
    if self.name == "gaussian":
      per_pixel = 0.5 * (
          precision * jnp.square(images - self._gaussian_mean(outputs))
          + self.log_variance
          + math.log(2 * math.pi)
      )
    else:
      per_pixel = precision * binary_cross_entropy(outputs, images)
    return per_pixel.sum(axis=(-3, -2, -1))

  def mean_image(self, outputs: jax.Array) -> jax.Array:
    """The likelihood's mean in [0, 1], for showing reconstructions and samples."""
    if self.name == "bernoulli":
      return jax.nn.sigmoid(outputs)
    return jnp.clip(self._gaussian_mean(outputs), 0.0, 1.0)

  def _gaussian_mean(self, outputs: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(outputs) if self.mean_link == "sigmoid" else outputs


def from_config(config) -> Likelihood:
  """The ``likelihood`` config section as a Likelihood."""
  return Likelihood(
      config.name,
      float(config.log_variance),
      config.get("mean_link", "identity"),
  )
