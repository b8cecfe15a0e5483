"""On-device augmentation: J random views per image, inside the jitted step.

``augment_views(rng, images, num_views, config)`` maps uint8 images ``[B, H, W, C]``
to float32 views ``[B, J, H, W, C]`` in [0, 1], in the SimCLR order: random
resized crop, flip, colour jitter, random grayscale (colour images only).
Everything is vectorised over B and J: each view's crop (and flip) is a pair of
bilinear interpolation matrices ``R_y [H, H]`` and ``R_x [W, W]`` applied as
``R_y @ image @ R_x^T``, so the whole batch is two batched matmuls with no
gather and no Python loop; the colour ops are in ``color.py``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from simvae_jax.data import color

FLIPS = ("none", "horizontal", "vertical")
# Colour keys are folded in (rather than split off with the crop's) so that
# the crop and flip of a key are the same with and without colour ops.
_COLOR_STREAM = 1


def validate_config(config) -> None:
  """Raises ValueError for augmentation settings that make no sense."""
  low, high = config.crop_scale
  if not 0.0 < low <= high <= 1.0:
    raise ValueError(
        f"augment.crop_scale must satisfy 0 < low <= high <= 1, "
        f"got {tuple(config.crop_scale)}"
    )
  low, high = config.crop_ratio
  if not 0.0 < low <= high:
    raise ValueError(
        f"augment.crop_ratio must satisfy 0 < low <= high, got "
        f"{tuple(config.crop_ratio)}"
    )
  if config.flip not in FLIPS:
    raise ValueError(
        f"augment.flip must be one of {FLIPS}, got {config.flip!r}"
    )
  for name in ("color_jitter_prob", "grayscale_prob"):
    if not 0.0 <= config[name] <= 1.0:
      raise ValueError(f"augment.{name} must be in [0, 1], got {config[name]}")
  if (
      len(config.color_jitter) != color.NUM_JITTER_OPS
      or min(config.color_jitter) < 0
  ):
    raise ValueError(
        "augment.color_jitter must be four strengths >= 0 "
        "(brightness, contrast, saturation, hue), got "
        f"{tuple(config.color_jitter)}"
    )
  if not 0.0 <= config.color_jitter_strength * config.color_jitter[3] <= 0.5:
    raise ValueError(
        "The hue shift (augment.color_jitter[3] x "
        "color_jitter_strength) must be in [0, 0.5]."
    )


def uses_color(config) -> bool:
  """Whether the config asks for colour jitter or grayscale."""
  return config.color_jitter_prob > 0 or config.grayscale_prob > 0


def check_image_shape(config, image_shape) -> None:
  """Colour augmentations need RGB images: a clear error otherwise."""
  if uses_color(config) and image_shape[-1] != 3:
    raise ValueError(
        f"Colour jitter / grayscale need RGB images, but the images have "
        f"{image_shape[-1]} channel(s); set --config.augment.color_jitter_prob=0 "
        f"--config.augment.grayscale_prob=0."
    )


def to_unit_interval(images: jax.Array) -> jax.Array:
  """uint8 [...] -> float32 [...] in [0, 1]."""
  return images.astype(jnp.float32) / 255.0


def maybe_binarize(images: jax.Array, binarize: bool) -> jax.Array:
  """Thresholds float images at 0.5 when ``binarize``; identity otherwise."""
  return (images > 0.5).astype(jnp.float32) if binarize else images


def preprocess(images: jax.Array, binarize: bool) -> jax.Array:
  """Un-augmented input for evaluation: uint8 [..., H, W, C] -> float32 [0, 1]."""
  return maybe_binarize(to_unit_interval(images), binarize)


def interpolation_matrix(
    start: jax.Array, length: jax.Array, size: int
) -> jax.Array:
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


def _crop_sizes(
    rng: jax.Array,
    shape: tuple[int, ...],
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
):
  """Samples crop heights and widths [shape] in pixels (SimCLR / torchvision).

  The area fraction is uniform in ``scale`` and the aspect ratio log-uniform in
  ``ratio``; sides longer than the image are clipped to it (torchvision instead
  retries up to 10 times and then falls back to a centre crop).
  """
  area_rng, ratio_rng = jax.random.split(rng)
  area = jax.random.uniform(area_rng, shape, minval=scale[0], maxval=scale[1])
  area = area * height * width
  log_ratio = jax.random.uniform(
      ratio_rng, shape, minval=math.log(ratio[0]), maxval=math.log(ratio[1])
  )
  aspect = jnp.exp(log_ratio)
  crop_width = jnp.minimum(jnp.sqrt(area * aspect), width)
  crop_height = jnp.minimum(jnp.sqrt(area / aspect), height)
  return crop_height, crop_width


def augment_views(
    rng: jax.Array, images: jax.Array, num_views: int, config
) -> jax.Array:
  """J augmented views of every image.

  Args:
    rng: PRNG key.
    images: uint8 [B, H, W, C].
    num_views: J >= 1.
    config: ``crop_scale`` (low, high), ``crop_ratio`` (low, high), ``flip``
      ('none' | 'horizontal' | 'vertical'), ``color_jitter`` (four strengths,
      scaled by ``color_jitter_strength``), ``color_jitter_prob``,
      ``grayscale_prob``, ``binarize`` (bool).

  Returns:
    float32 [B, J, H, W, C] in [0, 1].
  """
  batch, height, width, _ = images.shape
  shape = (batch, num_views)
  size_rng, y_rng, x_rng, flip_rng = jax.random.split(rng, 4)
  crop_height, crop_width = _crop_sizes(
      size_rng,
      shape,
      height,
      width,
      tuple(config.crop_scale),
      tuple(config.crop_ratio),
  )
  top = jax.random.uniform(y_rng, shape) * (height - crop_height)
  left = jax.random.uniform(x_rng, shape) * (width - crop_width)
  rows = interpolation_matrix(top, crop_height, height)  # [B, J, H, H]
  cols = interpolation_matrix(left, crop_width, width)  # [B, J, W, W]
  if config.flip != "none":
    flip = jax.random.bernoulli(flip_rng, 0.5, shape)[..., None, None]
    if config.flip == "horizontal":
      cols = jnp.where(flip, cols[..., ::-1, :], cols)
    else:
      rows = jnp.where(flip, rows[..., ::-1, :], rows)
  views = jnp.einsum("bjoh,bhwc->bjowc", rows, to_unit_interval(images))
  views = jnp.einsum("bjowc,bjpw->bjopc", views, cols)
  if uses_color(config):
    views = _color_views(jax.random.fold_in(rng, _COLOR_STREAM), views, config)
  return maybe_binarize(views, config.binarize)


def _color_views(rng: jax.Array, views: jax.Array, config) -> jax.Array:
  jitter_rng, gray_rng = jax.random.split(rng)
  strengths = [config.color_jitter_strength * s for s in config.color_jitter]
  if config.color_jitter_prob > 0:
    views = color.color_jitter(
        jitter_rng, views, strengths, config.color_jitter_prob
    )
  if config.grayscale_prob > 0:
    views = color.random_grayscale(gray_rng, views, config.grayscale_prob)
  return views
