"""Style tasks with known answers: controlled transformations of un-augmented
images, each a labelled task probed on frozen representations like the content
task (the paper's H2: discriminative SSL discards style that SimVAE keeps).

Every image of a split gets a class drawn uniformly (deterministic in the run's
seed, the split and the task) and is transformed accordingly; the encoder then
represents the transformed images, and an MLP probe and kNN learn the class
from the representations (``suite.evaluate``). Chance is 1 / number of classes
(the majority baseline is reported beside). Tasks:

* ``hflip`` / ``vflip``: flipped left-right / upside down, or not (2 classes);
* ``rotation``: rotated by 0, 90, 180 or 270 degrees (4; square images);
* ``crop_position``: which quadrant a half-size crop, zoomed back to full size,
  shows (4: top-left, top-right, bottom-left, bottom-right);
* ``crop_scale``: the side of a centred crop zoomed to full size, as a fraction
  of the image (3: ``CROP_SCALES``);
* ``hue`` (colour images): hue shifted by 0, 1/4, 1/2 or 3/4 of the circle (4);
* ``grayscale`` (colour images): replaced by its luminance, or not (2).

The geometric tasks resample with the augmentations' bilinear crop matrices and
the colour tasks use their colour functions, so a task is exactly the kind of
change the training views make. Selected by ``eval.tasks = ("style",)``;
each task uses the first ``eval.style_max_examples`` images of each split.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from simvae_jax import seeding
from simvae_jax.data import augment, color

CROP_SCALES = (1.0, 0.75, 0.5)
HUE_SHIFTS = (0.0, 0.25, 0.5, 0.75)
QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, column) halves


@dataclasses.dataclass(frozen=True)
class StyleTask:
  """``transform(images [n, H, W, C] float in [0, 1], classes [n] int) ->
  images [n, H, W, C]``; ``colour`` tasks need 3 channels."""

  name: str
  num_classes: int
  transform: Callable
  colour: bool = False


def _select(classes: jax.Array, options: list[jax.Array]) -> jax.Array:
  """options[classes[i]][i] for each i; options: [n, H, W, C] each."""
  stacked = jnp.stack(options)  # [K, n, H, W, C]
  return jnp.take_along_axis(
      stacked, classes[None, :, None, None, None], axis=0
  )[0]


def _flip(axis: int):
  def transform(images, classes):
    return _select(classes, [images, jnp.flip(images, axis)])

  return transform


def _rotation(images, classes):
  if images.shape[1] != images.shape[2]:
    raise ValueError(f"rotation needs square images, got {images.shape[1:3]}")
  return _select(classes, [jnp.rot90(images, k, axes=(1, 2)) for k in range(4)])


def zoom(images: jax.Array, top, left, height, width) -> jax.Array:
  """Crops [n] (pixels, continuous) of images [n, H, W, C], each resampled
  bilinearly to the full H x W (the training views' crop)."""
  _, rows_out, cols_out, _ = images.shape
  rows = augment.interpolation_matrix(top, height, rows_out)  # [n, H, H]
  cols = augment.interpolation_matrix(left, width, cols_out)  # [n, W, W]
  zoomed = jnp.einsum("noh,nhwc->nowc", rows, images)
  return jnp.einsum("nowc,npw->nopc", zoomed, cols)


def _crop_position(images, classes):
  _, height, width, _ = images.shape
  row_half = jnp.asarray([q[0] for q in QUADRANTS], jnp.float32)[classes]
  col_half = jnp.asarray([q[1] for q in QUADRANTS], jnp.float32)[classes]
  ones = jnp.ones_like(row_half)
  return zoom(
      images,
      row_half * height / 2,
      col_half * width / 2,
      ones * height / 2,
      ones * width / 2,
  )


def _crop_scale(images, classes):
  _, height, width, _ = images.shape
  scale = jnp.asarray(CROP_SCALES, jnp.float32)[classes]
  return zoom(
      images,
      (1 - scale) * height / 2,
      (1 - scale) * width / 2,
      scale * height,
      scale * width,
  )


def _hue(images, classes):
  shift = jnp.asarray(HUE_SHIFTS, jnp.float32)[classes]
  return color.shift_hue(images, shift[:, None, None])


def _grayscale(images, classes):
  return _select(classes, [images, color.grayscale(images)])


STYLE_TASKS = (
    StyleTask("hflip", 2, _flip(2)),
    StyleTask("vflip", 2, _flip(1)),
    StyleTask("rotation", 4, _rotation),
    StyleTask("crop_position", len(QUADRANTS), _crop_position),
    StyleTask("crop_scale", len(CROP_SCALES), _crop_scale),
    StyleTask("hue", len(HUE_SHIFTS), _hue, colour=True),
    StyleTask("grayscale", 2, _grayscale, colour=True),
)


def style_tasks(channels: int) -> list[StyleTask]:
  """The style tasks that apply to images with ``channels`` channels."""
  return [t for t in STYLE_TASKS if channels == 3 or not t.colour]


def draw_classes(task: StyleTask, count: int, seed: int, split: str):
  """int32 [count] classes of a split's images, uniform over the task's
  classes and deterministic in (seed, split, task)."""
  rng = np.random.default_rng(
      seeding.purpose_seed(seed, f"style/{task.name}/{split}")
  )
  return rng.integers(0, task.num_classes, count).astype(np.int32)


@functools.partial(jax.jit, static_argnums=0)
def _apply(task: StyleTask, images: jax.Array, classes: jax.Array):
  unit = augment.to_unit_interval(images)
  transformed = jnp.clip(task.transform(unit, classes), 0.0, 1.0)
  return jnp.round(transformed * 255.0).astype(jnp.uint8)


def transform_images(
    task: StyleTask,
    images: np.ndarray,
    classes: np.ndarray,
    batch_size: int = 1000,
) -> np.ndarray:
  """uint8 images [n, H, W, C] transformed per their ``classes`` [n]."""
  batches = [
      np.asarray(
          _apply(
              task,
              images[start : start + batch_size],
              classes[start : start + batch_size],
          )
      )
      for start in range(0, len(images), batch_size)
  ]
  return np.concatenate(batches) if batches else images.copy()
