"""Batched, jitted functions of un-augmented images: representations and
reconstruction error."""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from simvae_jax.data import augment


def map_in_batches(fn: Callable[[jax.Array], jax.Array], images: np.ndarray,
                   batch_size: int = 1000) -> np.ndarray:
  """Applies a jitted ``fn`` (uint8 [b, H, W, C] -> [b, ...]) over [N, H, W, C].

  The last batch is padded to ``batch_size`` so only one program is compiled.
  """
  outputs = []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    padded = np.zeros((batch_size, *images.shape[1:]), images.dtype)
    padded[:len(chunk)] = chunk
    outputs.append(np.asarray(fn(padded))[:len(chunk)])
  return np.concatenate(outputs)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _represent(method, params, images, binarize):
  return method.represent(params, augment.preprocess(images, binarize))


@functools.partial(jax.jit, static_argnums=(0, 3))
def _squared_error(method, params, images, binarize):
  targets = augment.preprocess(images, binarize)
  return jnp.mean(jnp.square(method.reconstruct(params, targets) - targets),
                  axis=(1, 2, 3))


def compute_representations(method, params, images: np.ndarray, binarize: bool,
                            batch_size: int = 1000) -> np.ndarray:
  """method.represent of uint8 images [N, H, W, C] -> float32 [N, D]."""
  return map_in_batches(lambda x: _represent(method, params, x, binarize), images,
                        batch_size)


def reconstruction_mse(method, params, images: np.ndarray, binarize: bool,
                       batch_size: int = 1000) -> float:
  """Per-pixel MSE between un-augmented images in [0, 1] and their
  reconstructions, averaged over pixels and images."""
  errors = map_in_batches(lambda x: _squared_error(method, params, x, binarize),
                          images, batch_size)
  return float(errors.mean())
