"""Batched, jitted functions of un-augmented images (networks in inference
mode): representations and reconstruction error."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from simvae_jax.data import augment
from simvae_jax.evaluation.common import map_in_batches


@functools.partial(jax.jit, static_argnums=(0, 4))
def _represent(method, params, model_state, images, binarize):
  return method.represent(
      params, model_state, augment.preprocess(images, binarize)
  )


@functools.partial(jax.jit, static_argnums=(0, 4))
def _squared_error(method, params, model_state, images, binarize):
  targets = augment.preprocess(images, binarize)
  reconstructions = method.reconstruct(params, model_state, targets)
  return jnp.mean(jnp.square(reconstructions - targets), axis=(1, 2, 3))


def compute_representations(
    method,
    params,
    model_state,
    images: np.ndarray,
    binarize: bool,
    batch_size: int = 1000,
) -> np.ndarray:
  """method.represent of uint8 images [N, H, W, C] -> float32 [N, D]."""
  return map_in_batches(
      lambda x: _represent(method, params, model_state, x, binarize),
      images,
      batch_size,
  )


def reconstruction_mse(
    method,
    params,
    model_state,
    images: np.ndarray,
    binarize: bool,
    batch_size: int = 1000,
) -> float:
  """Per-pixel MSE between un-augmented images in [0, 1] and their
  reconstructions, averaged over pixels and images."""
  errors = map_in_batches(
      lambda x: _squared_error(method, params, model_state, x, binarize),
      images,
      batch_size,
  )
  return float(errors.mean())
