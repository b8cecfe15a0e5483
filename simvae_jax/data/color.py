"""Colour augmentations of views, vectorised over (image, view) on the device.

The SimCLR reference semantics (``google-research/simclr``, ``data_util.py``):
colour jitter applies brightness (multiplicative), contrast (about each
channel's spatial mean), saturation and hue (in HSV) in a random order per
view, clipping to [0, 1] after each op, and is itself applied with probability
p; random grayscale replaces a view by its luminance (ITU-R 601 weights) with
probability p. The colour-space maths is dm-pix's (equivalent to tf.image).

A random order per view without a per-view branch: in each of the four slots
every op is computed for the whole batch and each view keeps the result of
the op its permutation puts in that slot (a select), so the program has no
Python loop over views and no ``lax.cond``.
"""

from __future__ import annotations

import dm_pix
import jax
import jax.numpy as jnp

NUM_JITTER_OPS = 4  # brightness, contrast, saturation, hue


def _uniform(rng, shape, low, high):
  return jax.random.uniform(rng, shape, minval=low, maxval=high)


def scale_brightness(images: jax.Array, factor: jax.Array) -> jax.Array:
  """[..., H, W, 3] times factor [..., 1, 1, 1] (SimCLR v2's brightness)."""
  return images * factor


def scale_contrast(images: jax.Array, factor: jax.Array) -> jax.Array:
  """Scales about each channel's spatial mean; factor [..., 1, 1, 1]."""
  return dm_pix.adjust_contrast(images, factor)


def scale_saturation(images: jax.Array, factor: jax.Array) -> jax.Array:
  """Scales HSV saturation (clipped to [0, 1]); factor [..., 1, 1]."""
  return dm_pix.adjust_saturation(images, factor)


def shift_hue(images: jax.Array, shift: jax.Array) -> jax.Array:
  """Adds ``shift`` [..., 1, 1] to the HSV hue (modulo 1)."""
  return dm_pix.adjust_hue(images, shift)


def grayscale(images: jax.Array) -> jax.Array:
  """Luminance (ITU-R 601: 0.2989 R + 0.5870 G + 0.1140 B) in all three channels."""
  return dm_pix.rgb_to_grayscale(images, keep_dims=True)


def color_jitter(
    rng: jax.Array, views: jax.Array, strengths, probability: float
):
  """SimCLR colour jitter of views [B, J, H, W, 3] in [0, 1].

  Args:
    rng: PRNG key.
    views: float32 [B, J, H, W, 3].
    strengths: (brightness, contrast, saturation, hue) maxima: factors are
      uniform in [max(0, 1 - s), 1 + s] (hue: shift uniform in [-s, s]).
    probability: chance that a view is jittered at all.

  Returns:
    float32 [B, J, H, W, 3] in [0, 1].
  """
  brightness, contrast, saturation, hue = (float(s) for s in strengths)
  shape = views.shape[:2]
  keys = jax.random.split(rng, 6)
  expand = lambda x: x[..., None, None, None]  # [B, J] -> [B, J, 1, 1, 1]
  factors = [
      expand(_uniform(keys[i], shape, max(0.0, 1.0 - s), 1.0 + s))
      for i, s in enumerate((brightness, contrast, saturation))
  ]
  hue_shift = _uniform(keys[3], shape, -hue, hue)[..., None, None]
  ops = (
      lambda x: scale_brightness(x, factors[0]),
      lambda x: scale_contrast(x, factors[1]),
      lambda x: scale_saturation(x, factors[2][..., 0]),
      lambda x: shift_hue(x, hue_shift),
  )
  order = jnp.argsort(
      jax.random.uniform(keys[4], (*shape, NUM_JITTER_OPS)), axis=-1
  )
  jittered = views
  for slot in range(NUM_JITTER_OPS):
    chosen = expand(order[..., slot])
    candidates = [jnp.clip(op(jittered), 0.0, 1.0) for op in ops]
    jittered = jnp.select(
        [chosen == index for index in range(NUM_JITTER_OPS)], candidates
    )
  apply = expand(jax.random.bernoulli(keys[5], probability, shape))
  return jnp.where(apply, jittered, views)


def random_grayscale(rng: jax.Array, views: jax.Array, probability: float):
  """Replaces each view [B, J, H, W, 3] by its luminance (in all three
  channels) with ``probability``."""
  apply = jax.random.bernoulli(rng, probability, views.shape[:2])
  return jnp.where(apply[..., None, None, None], grayscale(views), views)
