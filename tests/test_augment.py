"""On-device augmentation: ranges, determinism, identity, flips, vectorisation."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from simvae_jax.data import augment


def make_config(**overrides):
  config = ml_collections.ConfigDict(dict(
      crop_scale=(0.4, 1.0), crop_ratio=(3 / 4, 4 / 3), flip="horizontal",
      binarize=False))
  config.update(overrides)
  return config


@pytest.fixture
def images():
  return np.random.default_rng(0).integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)


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
  config = make_config(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip="none")
  square = images[:, :10]   # ratio 1 fits the whole image only when it is square
  views = augment.augment_views(jax.random.PRNGKey(3), square, 2, config)
  expected = square.astype(np.float32)[:, None] / 255.0
  np.testing.assert_allclose(views, np.broadcast_to(expected, views.shape), atol=1e-6)


@pytest.mark.parametrize("flip, axis", [("horizontal", 2), ("vertical", 1)])
def test_flip_mirrors_the_image(images, flip, axis):
  config = make_config(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=flip)
  square = images[:, :10]
  views = np.asarray(augment.augment_views(jax.random.PRNGKey(4), square, 8, config))
  original = square.astype(np.float32) / 255.0
  mirrored = np.flip(original, axis=axis)
  flipped = 0
  for b in range(len(square)):
    for j in range(8):
      if np.allclose(views[b, j], original[b], atol=1e-6):
        continue
      np.testing.assert_allclose(views[b, j], mirrored[b], atol=1e-6)
      flipped += 1
  assert 0 < flipped < 40   # about half of the 40 views


def test_crop_is_bilinear_resampling_of_a_subwindow():
  # A horizontal ramp stays a ramp under bilinear resampling: every output row
  # is linear in x, with a slope of at most the input's (a crop zooms in).
  ramp = np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))[None, :, :, None]
  config = make_config(crop_scale=(0.3, 0.6), flip="none")
  views = np.asarray(augment.augment_views(jax.random.PRNGKey(5), ramp, 6, config))
  steps = np.diff(views[0, :, 3, :, 0], axis=-1)
  interior = steps[:, 1:-1]
  np.testing.assert_allclose(interior, np.broadcast_to(interior[:, :1], interior.shape),
                             atol=1e-5)
  assert np.all(steps >= -1e-6) and np.all(steps <= 16 / 255 + 1e-6)


def test_binarize_gives_zeros_and_ones(images):
  views = augment.augment_views(jax.random.PRNGKey(0), images, 2,
                                make_config(binarize=True))
  assert set(np.unique(np.asarray(views)).tolist()) <= {0.0, 1.0}


def test_single_view_and_jit(images):
  config = make_config()
  fn = jax.jit(lambda rng, x: augment.augment_views(rng, x, 1, config))
  views = fn(jax.random.PRNGKey(0), images)
  assert views.shape == (5, 1, 12, 10, 3)


@pytest.mark.parametrize("overrides", [dict(crop_scale=(0.0, 1.0)),
                                       dict(crop_scale=(0.8, 0.5)),
                                       dict(crop_ratio=(2.0, 1.0)),
                                       dict(flip="diagonal")])
def test_invalid_config_is_rejected(overrides):
  with pytest.raises(ValueError):
    augment.validate_config(make_config(**overrides))
