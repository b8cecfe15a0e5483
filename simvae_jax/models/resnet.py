"""Convolutional encoders and decoder for natural images (CIFAR-10, CelebA).

* ``AuthorsResNetEncoder`` / ``AuthorsResNetDecoder``: a port of the released
  SimVAE code's networks (a truncated half-width ResNet-18 and a heavier
  transposed-convolution ResNet decoder), PyTorch padding, initialisation and
  BatchNorm constants included. At 32x32 with a 64-d latent: 969,920 and
  8,984,387 parameters.
* ``ResNet18Encoder``: the CIFAR ResNet-18 of SSL libraries (3x3 stride-1 stem,
  no max-pool, stages 64-512, global average pool; 11,168,832 parameters before
  the output layer).

Inputs are float [N, H, W, C] in [0, 1]; every module takes ``train`` (batch
statistics and their update) and ``dtype`` (computation dtype; parameters stay
float32).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from simvae_jax.models.layers import batch_norm, max_pool_3x3_stride_2
from simvae_jax.models.transposed_conv import TransposedConv

# PyTorch's kaiming_normal_(mode="fan_out", nonlinearity="relu"), which the
# released code applies to every Conv2d.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _torch_uniform(fan_in: int):
  """PyTorch's default initialiser of Linear/Conv weights and biases."""
  bound = 1.0 / math.sqrt(fan_in)
  return lambda rng, shape, dtype=jnp.float32: jax.random.uniform(
      rng, shape, dtype, -bound, bound
  )


def torch_dense(
    features: int, fan_in: int, dtype: Any, name: str | None = None
):
  """``nn.Linear`` with PyTorch's initialisation."""
  init = _torch_uniform(fan_in)
  return nn.Dense(
      features, kernel_init=init, bias_init=init, dtype=dtype, name=name
  )


def conv(
    features: int,
    kernel: int,
    stride: int,
    padding: int,
    dtype: Any,
    use_bias: bool = False,
    kernel_init=_conv_init,
) -> nn.Conv:
  """``nn.Conv2d`` with explicit symmetric padding."""
  return nn.Conv(
      features,
      (kernel, kernel),
      strides=(stride, stride),
      padding=((padding, padding), (padding, padding)),
      use_bias=use_bias,
      kernel_init=kernel_init,
      dtype=dtype,
  )


class BasicBlock(nn.Module):
  """ResNet BasicBlock; a 1x1 conv + BN shortcut when ``projection``."""

  features: int
  stride: int = 1
  projection: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    out = conv(self.features, 3, self.stride, 1, self.dtype)(x)
    out = nn.relu(batch_norm(train, self.dtype)(out))
    out = conv(self.features, 3, 1, 1, self.dtype)(out)
    out = batch_norm(train, self.dtype)(out)
    if self.projection:
      x = conv(self.features, 1, self.stride, 0, self.dtype)(x)
      x = batch_norm(train, self.dtype)(x)
    return nn.relu(out + x)


def residual_stages(
    x,
    widths: Sequence[int],
    strides: Sequence[int],
    blocks_per_stage: int,
    always_project: bool,
    train: bool,
    dtype: Any,
):
  """Stages of BasicBlocks; the first block of a stage has the stride and, when
  ``always_project`` (the released code) or its shape changes, a projection."""
  for width, stride in zip(widths, strides):
    for block in range(blocks_per_stage):
      first = block == 0
      project = first and (
          always_project or stride != 1 or x.shape[-1] != width
      )
      x = BasicBlock(width, stride if first else 1, project, dtype)(x, train)
  return x


class AuthorsResNetEncoder(nn.Module):
  """The released code's encoder: [N, H, W, C] -> [N, output_dim].

  Stem conv (3x3 with bias at <= 32 px, 4x4 without bias above; stride 1,
  padding 0), BN, ReLU, max-pool 3/2/1; BasicBlock stages (strides 1, 2, 2)
  whose first block always has a 1x1 conv + BN shortcut; flatten in PyTorch's
  (C, H, W) order; Linear to ``output_dim``.
  """

  output_dim: int
  stage_widths: Sequence[int] = (32, 64, 128)
  blocks_per_stage: int = 2
  stem_width: int = 64
  dtype: Any = None

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    small = images.shape[1] <= 32
    stem_init = _torch_uniform(images.shape[-1] * (3 if small else 4) ** 2)
    x = conv(
        self.stem_width,
        3 if small else 4,
        1,
        0,
        self.dtype,
        use_bias=small,
        kernel_init=stem_init,
    )(images)
    x = max_pool_3x3_stride_2(nn.relu(batch_norm(train, self.dtype)(x)))
    strides = (1,) + (2,) * (len(self.stage_widths) - 1)
    x = residual_stages(
        x,
        self.stage_widths,
        strides,
        self.blocks_per_stage,
        True,
        train,
        self.dtype,
    )
    x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
    return torch_dense(self.output_dim, x.shape[-1], self.dtype)(x)


class ResNet18Encoder(nn.Module):
  """CIFAR ResNet-18 of SSL libraries: [N, H, W, C] -> [N, output_dim].

  3x3 stride-1 stem without bias, BN, ReLU, no max-pool; four BasicBlock
  stages (strides 1, 2, 2, 2); global average pool; Dense to ``output_dim``.
  """

  output_dim: int
  stage_widths: Sequence[int] = (64, 128, 256, 512)
  blocks_per_stage: int = 2
  dtype: Any = None

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    x = conv(self.stage_widths[0], 3, 1, 1, self.dtype)(images)
    x = nn.relu(batch_norm(train, self.dtype)(x))
    strides = (1,) + (2,) * (len(self.stage_widths) - 1)
    x = residual_stages(
        x,
        self.stage_widths,
        strides,
        self.blocks_per_stage,
        False,
        train,
        self.dtype,
    )
    x = jnp.mean(x, axis=(1, 2))
    return torch_dense(self.output_dim, x.shape[-1], self.dtype)(x)


class DecoderBlock(nn.Module):
  """Released-code decoder block. Plain (``upsample=False``):
  convT3x3-BN-ReLU-convT3x3-BN-ReLU, no skip. Upsampling: a stride-2 convT3x3
  to ``features``, BN, ReLU, convT3x3, BN, plus a stride-2 convT1x1 + BN skip,
  then ReLU."""

  features: int
  upsample: bool = False
  method: str = "auto"
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    stride, output_padding = (2, 1) if self.upsample else (1, 0)
    tconv = lambda k, s, p, op: TransposedConv(
        self.features, k, s, p, op, method=self.method, dtype=self.dtype
    )
    out = tconv(3, stride, 1, output_padding)(x)
    out = nn.relu(batch_norm(train, self.dtype)(out))
    out = batch_norm(train, self.dtype)(tconv(3, 1, 1, 0)(out))
    if self.upsample:
      out = out + batch_norm(train, self.dtype)(tconv(1, 2, 0, 1)(x))
    return nn.relu(out)


class AuthorsResNetDecoder(nn.Module):
  """The released code's decoder: latents [N, D] -> outputs [N, H, W, C].

  Linear to ``widths[0]`` maps of side H / 16 (viewed in PyTorch's (C, H, W)
  order); for each consecutive pair of ``widths`` a plain block then an
  upsampling block; two plain blocks at the last width; a final 7x7 stride-2
  convT with bias to C channels. Outputs are unconstrained (the likelihood
  applies its link).
  """

  image_shape: Sequence[int]
  widths: Sequence[int] = (512, 256, 128, 64)
  transposed_conv: str = "auto"
  dtype: Any = None

  @nn.compact
  def __call__(self, latents: jax.Array, train: bool = False) -> jax.Array:
    height, width, channels = self.image_shape
    scale = 2 ** len(self.widths)
    if height != width or height % scale:
      raise ValueError(
          f"The resnet_authors decoder makes square images whose side is a "
          f"multiple of {scale}; got images of shape {tuple(self.image_shape)}."
      )
    side = height // scale
    block = lambda f, up: DecoderBlock(f, up, self.transposed_conv, self.dtype)
    x = torch_dense(
        self.widths[0] * side * side, latents.shape[-1], self.dtype
    )(latents)
    x = jnp.transpose(x.reshape(-1, self.widths[0], side, side), (0, 2, 3, 1))
    for width, next_width in zip(self.widths[:-1], self.widths[1:]):
      x = block(next_width, True)(block(width, False)(x, train), train)
    for _ in range(2):
      x = block(self.widths[-1], False)(x, train)
    return TransposedConv(
        channels,
        7,
        2,
        3,
        1,
        use_bias=True,
        method=self.transposed_conv,
        dtype=self.dtype,
    )(x)
