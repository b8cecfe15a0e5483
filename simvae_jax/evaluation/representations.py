"""Representations of un-augmented images, computed by a jitted batched function."""

from __future__ import annotations

import functools

import jax
import numpy as np

from simvae_jax.data import augment


@functools.partial(jax.jit, static_argnums=(0, 3))
def _represent_batch(method, params, images, binarize):
  return method.represent(params, augment.preprocess(images, binarize))


def compute_representations(method, params, images: np.ndarray, binarize: bool,
                            batch_size: int = 1000) -> np.ndarray:
  """method.represent over uint8 images [N, H, W, C] -> float32 [N, D].

  The last batch is padded to ``batch_size`` so only one program is compiled.
  """
  outputs = []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    padded = np.zeros((batch_size, *images.shape[1:]), images.dtype)
    padded[:len(chunk)] = chunk
    outputs.append(np.asarray(_represent_batch(method, params, padded, binarize))
                   [:len(chunk)])
  return np.concatenate(outputs)
