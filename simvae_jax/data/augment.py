"""On-device augmentation: J random views per image, inside the jitted step.

``augment_views(rng, images, num_views, config)`` maps uint8 images ``[B, H, W, C]``
to float32 views ``[B, J, H, W, C]`` in [0, 1]. It is vectorised over B and J:
each view's random resized crop (and flip) is a pair of bilinear interpolation
matrices ``R_y [H, H]`` and ``R_x [W, W]`` applied as ``R_y @ image @ R_x^T``, so
the whole batch is two batched matmuls with no gather and no Python loop.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

FLIPS = ("none", "horizontal", "vertical")


def validate_config(config) -> None:
  """Raises ValueError for augmentation settings that make no sense."""
  low, high = config.crop_scale
  if not 0.0 < low <= high <= 1.0:
    raise ValueError(f"augment.crop_scale must satisfy 0 < low <= high <= 1, "
                     f"got {tuple(config.crop_scale)}")
  low, high = config.crop_ratio
  if not 0.0 < low <= high:
    raise ValueError(f"augment.crop_ratio must satisfy 0 < low <= high, got "
                     f"{tuple(config.crop_ratio)}")
  if config.flip not in FLIPS:
    raise ValueError(f"augment.flip must be one of {FLIPS}, got {config.flip!r}")


def to_unit_interval(images: jax.Array) -> jax.Array:
  """uint8 [...] -> float32 [...] in [0, 1]."""
  return images.astype(jnp.float32) / 255.0


def maybe_binarize(images: jax.Array, binarize: bool) -> jax.Array:
  """Thresholds float images at 0.5 when ``binarize``; identity otherwise."""
  return (images > 0.5).astype(jnp.float32) if binarize else images


def preprocess(images: jax.Array, binarize: bool) -> jax.Array:
  """Un-augmented input for evaluation: uint8 [..., H, W, C] -> float32 [0, 1]."""
  return maybe_binarize(to_unit_interval(images), binarize)


def interpolation_matrix(start: jax.Array, length: jax.Array,
                         size: int) -> jax.Array:
  """Bilinear resampling weights of a crop along one axis.

  Args:
    start: [...] crop offset in pixels (continuous).
    length: [...] crop length in pixels (continuous).
    size: number of input and output pixels along the axis.

  Returns:
    [..., size_out, size_in] weights; row o reads the crop at the centre of
    output pixel o. A crop with start 0 and length ``size`` gives the identity.
  """
  pixel = jnp.arange(size, dtype=jnp.float32)
  source = start[..., None] + (pixel + 0.5) * (length[..., None] / size) - 0.5
  source = jnp.clip(source, 0.0, size - 1.0)
  return jnp.maximum(0.0, 1.0 - jnp.abs(source[..., :, None] - pixel))


def _crop_sizes(rng: jax.Array, shape: tuple[int, ...], height: int, width: int,
                scale: tuple[float, float], ratio: tuple[float, float]):
  """Samples crop heights and widths [shape] in pixels (SimCLR / torchvision).

  The area fraction is uniform in ``scale`` and the aspect ratio log-uniform in
  ``ratio``; sides longer than the image are clipped to it (torchvision instead
  retries up to 10 times and then falls back to a centre crop).
  """
  area_rng, ratio_rng = jax.random.split(rng)
  area = jax.random.uniform(area_rng, shape, minval=scale[0], maxval=scale[1])
  area = area * height * width
  log_ratio = jax.random.uniform(ratio_rng, shape, minval=math.log(ratio[0]),
                                 maxval=math.log(ratio[1]))
  aspect = jnp.exp(log_ratio)
  crop_width = jnp.minimum(jnp.sqrt(area * aspect), width)
  crop_height = jnp.minimum(jnp.sqrt(area / aspect), height)
  return crop_height, crop_width


def augment_views(rng: jax.Array, images: jax.Array, num_views: int,
                  config) -> jax.Array:
  """J augmented views of every image.

  Args:
    rng: PRNG key.
    images: uint8 [B, H, W, C].
    num_views: J >= 1.
    config: ``crop_scale`` (low, high), ``crop_ratio`` (low, high), ``flip``
      ('none' | 'horizontal' | 'vertical'), ``binarize`` (bool).

  Returns:
    float32 [B, J, H, W, C] in [0, 1].
  """
  batch, height, width, _ = images.shape
  shape = (batch, num_views)
  size_rng, y_rng, x_rng, flip_rng = jax.random.split(rng, 4)
  crop_height, crop_width = _crop_sizes(size_rng, shape, height, width,
                                        tuple(config.crop_scale),
                                        tuple(config.crop_ratio))
  top = jax.random.uniform(y_rng, shape) * (height - crop_height)
  left = jax.random.uniform(x_rng, shape) * (width - crop_width)
  rows = interpolation_matrix(top, crop_height, height)      # [B, J, H, H]
  cols = interpolation_matrix(left, crop_width, width)       # [B, J, W, W]
  if config.flip != "none":
    flip = jax.random.bernoulli(flip_rng, 0.5, shape)[..., None, None]
    if config.flip == "horizontal":
      cols = jnp.where(flip, cols[..., ::-1, :], cols)
    else:
      rows = jnp.where(flip, rows[..., ::-1, :], rows)
  views = jnp.einsum("bjoh,bhwc->bjowc", rows, to_unit_interval(images))
  views = jnp.einsum("bjowc,bjpw->bjopc", views, cols)
  return maybe_binarize(views, config.binarize)
