"""MLP encoder and decoder (the released code's MNIST networks:
784-2000-500-500-(2*10) and its mirror)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax


class MLP(nn.Module):
  """Flattens all but the leading axis and maps it through ReLU layers to
  ``output_dim`` features: the MLP encoder (input images [N, H, W, C]) and the
  projection heads of discriminative methods (input [N, D]).

  Output [N, output_dim]. ``train`` is accepted for a uniform interface (no
  batch statistics).
  """

  output_dim: int
  hidden_sizes: Sequence[int] = (2000, 500, 500)
  dtype: Any = None

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = images.reshape(images.shape[0], -1)
    for size in self.hidden_sizes:
      x = nn.relu(nn.Dense(size, dtype=self.dtype)(x))
    return nn.Dense(self.output_dim, dtype=self.dtype)(x)


class MLPDecoder(nn.Module):
  """Maps latents [N, D] through ReLU layers to per-pixel outputs [N, H, W, C].

  Outputs are unconstrained: Bernoulli logits or Gaussian means, as the
  likelihood decides.
  """

  image_shape: Sequence[int]
  hidden_sizes: Sequence[int] = (500, 500, 2000)
  dtype: Any = None

  @nn.compact
  def __call__(self, latents: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = latents
    for size in self.hidden_sizes:
      x = nn.relu(nn.Dense(size, dtype=self.dtype)(x))
    x = nn.Dense(math.prod(self.image_shape), dtype=self.dtype)(x)
    return x.reshape(latents.shape[0], *self.image_shape)
