"""On-device augmentation: ranges, determinism, identity, flips, vectorisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simvae_jax.base_config import get_base_config
from simvae_jax.data import augment, color


def make_config(**overrides):
  config = get_base_config().augment
  config.update(overrides)
  return config


@pytest.fixture
def images():
  return np.random.default_rng(0).integers(
      0, 256, (5, 12, 10, 3), dtype=np.uint8
  )


def test_shape_dtype_and_range(images):
  views = augment.augment_views(jax.random.PRNGKey(0), images, 4, make_config())
  assert views.shape == (5, 4, 12, 10, 3)
  assert views.dtype == jnp.float32
  assert float(views.min()) >= 0.0 and float(views.max()) <= 1.0


def test_deterministic_per_key_and_different_across_keys(images):
  config = make_config()
  first = augment.augment_views(jax.random.PRNGKey(1), images, 3, config)
  again = augment.augment_views(jax.random.PRNGKey(1), images, 3, config)
  other = augment.augment_views(jax.random.PRNGKey(2), images, 3, config)
  np.testing.assert_array_equal(first, again)
  assert float(jnp.abs(first - other).mean()) > 1e-3


def test_views_of_one_image_differ(images):
  views = augment.augment_views(jax.random.PRNGKey(0), images, 4, make_config())
  for j in range(1, 4):
    assert float(jnp.abs(views[:, 0] - views[:, j]).mean()) > 1e-3


def test_full_crop_without_flip_is_identity(images):
  config = make_config(
      crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip="none"
  )
  square = images[:, :10]  # ratio 1 fits the whole image only when it is square
  views = augment.augment_views(jax.random.PRNGKey(3), square, 2, config)
  expected = square.astype(np.float32)[:, None] / 255.0
  np.testing.assert_allclose(
      views, np.broadcast_to(expected, views.shape), atol=1e-6
  )


@pytest.mark.parametrize("flip, axis", [("horizontal", 2), ("vertical", 1)])
def test_flip_mirrors_the_image(images, flip, axis):
  config = make_config(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=flip)
  square = images[:, :10]
  views = np.asarray(
      augment.augment_views(jax.random.PRNGKey(4), square, 8, config)
  )
  original = square.astype(np.float32) / 255.0
  mirrored = np.flip(original, axis=axis)
  flipped = 0
  for b in range(len(square)):
    for j in range(8):
      if np.allclose(views[b, j], original[b], atol=1e-6):
        continue
      np.testing.assert_allclose(views[b, j], mirrored[b], atol=1e-6)
      flipped += 1
  assert 0 < flipped < 40  # about half of the 40 views


def test_crop_is_bilinear_resampling_of_a_subwindow():
  # A horizontal ramp stays a ramp under bilinear resampling: every output row
  # is linear in x, with a slope of at most the input's (a crop zooms in).
  ramp = np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))[None, :, :, None]
  config = make_config(crop_scale=(0.3, 0.6), flip="none")
  views = np.asarray(
      augment.augment_views(jax.random.PRNGKey(5), ramp, 6, config)
  )
  steps = np.diff(views[0, :, 3, :, 0], axis=-1)
  interior = steps[:, 1:-1]
  np.testing.assert_allclose(
      interior, np.broadcast_to(interior[:, :1], interior.shape), atol=1e-5
  )
  assert np.all(steps >= -1e-6) and np.all(steps <= 16 / 255 + 1e-6)


def test_binarize_gives_zeros_and_ones(images):
  views = augment.augment_views(
      jax.random.PRNGKey(0), images, 2, make_config(binarize=True)
  )
  assert set(np.unique(np.asarray(views)).tolist()) <= {0.0, 1.0}


def test_single_view_and_jit(images):
  config = make_config()
  fn = jax.jit(lambda rng, x: augment.augment_views(rng, x, 1, config))
  views = fn(jax.random.PRNGKey(0), images)
  assert views.shape == (5, 1, 12, 10, 3)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(crop_scale=(0.0, 1.0)),
        dict(crop_scale=(0.8, 0.5)),
        dict(crop_ratio=(2.0, 1.0)),
        dict(flip="diagonal"),
    ],
)
def test_invalid_config_is_rejected(overrides):
  with pytest.raises(ValueError):
    augment.validate_config(make_config(**overrides))


# ----------------------------------------------------------------------------
# Colour views.
# ----------------------------------------------------------------------------

SIMCLR_COLOR = dict(color_jitter_prob=0.8, grayscale_prob=0.2)


@pytest.fixture
def colour_images():
  """Mid-range colours, so every jitter op visibly changes a view."""
  rng = np.random.default_rng(0)
  return rng.integers(40, 216, (64, 8, 8, 3), dtype=np.uint8)


def unit(images):
  return jnp.asarray(images, jnp.float32) / 255.0


def luminance(images):
  return np.tensordot(
      np.asarray(images, np.float64), [0.2989, 0.5870, 0.1140], axes=(-1, 0)
  )


@pytest.mark.parametrize("shift", [0.0, 1.0, -1.0])
def test_whole_turn_hue_shifts_are_identities(colour_images, shift):
  images = unit(colour_images)
  np.testing.assert_allclose(
      color.shift_hue(images, jnp.full((64, 1, 1), shift)), images, atol=1e-5
  )


def test_half_turn_hue_shift_changes_colours(colour_images):
  images = unit(colour_images)
  assert (
      float(
          jnp.abs(
              color.shift_hue(images, jnp.full((64, 1, 1), 0.5)) - images
          ).mean()
      )
      > 0.05
  )


def test_zero_saturation_gives_equal_channels(colour_images):
  gray = color.scale_saturation(unit(colour_images), jnp.zeros((64, 1, 1)))
  np.testing.assert_allclose(gray[..., 0], gray[..., 1], atol=1e-6)
  np.testing.assert_allclose(gray[..., 0], gray[..., 2], atol=1e-6)


def test_grayscale_preserves_luminance(colour_images):
  images = unit(colour_images)
  gray = np.asarray(color.grayscale(images))
  for channel in range(3):  # every channel is the input's luminance
    np.testing.assert_allclose(gray[..., channel], luminance(images), atol=1e-6)


def test_zero_strength_jitter_is_the_identity(colour_images):
  views = unit(colour_images)[:, None]
  jittered = color.color_jitter(jax.random.PRNGKey(0), views, (0, 0, 0, 0), 1.0)
  np.testing.assert_allclose(jittered, views, atol=1e-5)


def test_contrast_scales_about_each_channels_mean(colour_images):
  images = unit(colour_images)
  out = np.asarray(color.scale_contrast(images, jnp.full((64, 1, 1, 1), 0.5)))
  mean = np.asarray(images).mean(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(
      out, mean + 0.5 * (np.asarray(images) - mean), atol=1e-6
  )


@pytest.mark.slow
def test_colour_views_stay_in_range_and_differ(colour_images):
  config = make_config(**SIMCLR_COLOR)
  views = augment.augment_views(jax.random.PRNGKey(0), colour_images, 4, config)
  assert views.shape == (64, 4, 8, 8, 3) and views.dtype == jnp.float32
  assert float(views.min()) >= 0.0 and float(views.max()) <= 1.0
  for j in range(1, 4):
    assert float(jnp.abs(views[:, 0] - views[:, j]).mean()) > 1e-2


@pytest.mark.slow
def test_jitter_and_grayscale_rates_match_their_probabilities(colour_images):
  """With fixed crops (same key), a view was jittered iff it differs from its
  colour-free twin, and grayscaled iff its channels are equal."""
  num_views = 16  # 64 x 16 = 1024 views
  crop_only = augment.augment_views(
      jax.random.PRNGKey(5), colour_images, num_views, make_config()
  )
  jittered = augment.augment_views(
      jax.random.PRNGKey(5),
      colour_images,
      num_views,
      make_config(color_jitter_prob=0.8),
  )
  grayed = augment.augment_views(
      jax.random.PRNGKey(5),
      colour_images,
      num_views,
      make_config(grayscale_prob=0.2),
  )
  changed = np.asarray(jnp.abs(jittered - crop_only).max(axis=(2, 3, 4)) > 1e-4)
  gray = np.asarray(
      jnp.abs(grayed[..., 0] - grayed[..., 2]).max(axis=(2, 3)) < 1e-6
  )
  for rate, p in ((changed.mean(), 0.8), (gray.mean(), 0.2)):
    standard_error = np.sqrt(p * (1 - p) / changed.size)
    assert abs(rate - p) < 4 * standard_error, (rate, p)


def test_colour_ops_on_grayscale_images_are_a_clear_error():
  with pytest.raises(ValueError, match="RGB"):
    augment.check_image_shape(make_config(**SIMCLR_COLOR), (28, 28, 1))
  augment.check_image_shape(make_config(), (28, 28, 1))  # off: fine
