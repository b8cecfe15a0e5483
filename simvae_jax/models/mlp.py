"""MLP encoder and decoder (SPEC §3: 784-2000-500-500-(2*10) and its mirror)."""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax


class MLP(nn.Module):
  """Flattens all but the leading axis and maps it through ReLU layers to
  ``output_dim`` features: the MLP encoder (input images [N, H, W, C]) and the
  projection heads of discriminative methods (input [N, D]).

  Output float32 [N, output_dim].
  """

  hidden_sizes: Sequence[int]
  output_dim: int

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images.reshape(images.shape[0], -1)
    for size in self.hidden_sizes:
      x = nn.relu(nn.Dense(size)(x))
    return nn.Dense(self.output_dim)(x)


class MLPDecoder(nn.Module):
  """Maps latents [N, D] through ReLU layers to per-pixel outputs [N, H, W, C].

  Outputs are unconstrained: Bernoulli logits or Gaussian means, as the
  likelihood decides.
  """

  hidden_sizes: Sequence[int]
  image_shape: Sequence[int]

  @nn.compact
  def __call__(self, latents: jax.Array) -> jax.Array:
    x = latents
    for size in self.hidden_sizes:
      x = nn.relu(nn.Dense(size)(x))
    x = nn.Dense(math.prod(self.image_shape))(x)
    return x.reshape(latents.shape[0], *self.image_shape)
