"""Feature extractors for FID: Inception pool3 (user-supplied weights) or an
offline classifier trained on the dataset's own labels.

The offline classifier needs no download. It is a small CNN (three 3x3 conv
layers, global average pool, a 128-d ReLU layer whose outputs are the
features, then the class logits) trained with Adam from a fixed seed on the
training split, so every run on a dataset uses the same network on the same
machine; it is cached in ``fid.cache_dir`` under a key of the dataset and its
settings. Its FIDs compare runs with each other, **not** with published
Inception FIDs, and results say so.
"""

from __future__ import annotations

import hashlib
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from simvae_jax import xla_options
from simvae_jax.evaluation import inception
from simvae_jax.evaluation.common import count_classes, map_in_batches

OFFLINE = "offline_classifier"
INCEPTION = "inception_v3_pool3"


class FeatureClassifier(nn.Module):
  """[N, H, W, C] in [0, 1] -> (features [N, 128], logits [N, classes])."""

  num_classes: int

  @nn.compact
  def __call__(self, images):
    x = images
    for features in (32, 64, 128):
      x = nn.relu(nn.Conv(features, (3, 3))(x))
      if min(x.shape[1:3]) >= 4:
        x = nn.max_pool(x, (2, 2), (2, 2))
    features = nn.relu(nn.Dense(128)(jnp.mean(x, axis=(1, 2))))
    return features, nn.Dense(self.num_classes)(features)


def _to_unit(images):
  return jnp.asarray(images, jnp.float32) / 255.0


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
):
  """Parameters of a FeatureClassifier trained on uint8 images [N, H, W, C]."""
  model = FeatureClassifier(count_classes(labels))
  rng = jax.random.PRNGKey(0)  # fixed: the same features for every run
  params = xla_options.jit_initialisation(model.init)(
      rng, jnp.zeros((1, *images.shape[1:]))
  )["params"]
  optimizer = optax.adam(learning_rate)
  opt_state = optimizer.init(params)

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(params):
      _, logits = model.apply({"params": params}, _to_unit(x))
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    grads = jax.grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  order_rng = np.random.default_rng(0)
  for _ in range(epochs):
    order = order_rng.permutation(len(images))
    for start in range(0, len(images) - batch_size + 1, batch_size):
      batch = order[start : start + batch_size]
      params, opt_state = step(params, opt_state, images[batch], labels[batch])
  return model, params


def _cache_key(
    dataset: str, images: np.ndarray, labels: np.ndarray, epochs: int
):
  digest = hashlib.sha256()
  digest.update(json.dumps([dataset, images.shape, epochs]).encode())
  digest.update(images[:: max(1, len(images) // 256)].tobytes())
  digest.update(labels.tobytes())
  return digest.hexdigest()[:16]


def offline_classifier(
    fid_config, dataset: str, images: np.ndarray, labels: np.ndarray
):
  """The trained (or cached) classifier: (model, params)."""
  limit = fid_config.classifier_max_examples or len(images)
  images, labels = images[:limit], labels[:limit]
  epochs = fid_config.classifier_epochs
  cache = (
      os.path.expanduser(fid_config.cache_dir) if fid_config.cache_dir else ""
  )
  path = os.path.join(
      cache, f"{dataset}-{_cache_key(dataset, images, labels, epochs)}.msgpack"
  )
  model = FeatureClassifier(count_classes(labels))
  if cache and os.path.exists(path):
    template = jax.eval_shape(  # shapes only: no initialisation compiled
        model.init, jax.random.PRNGKey(0), jnp.zeros((1, *images.shape[1:]))
    )
    with open(path, "rb") as file:
      return model, serialization.from_bytes(template["params"], file.read())
  model, params = train_classifier(images, labels, epochs)
  if cache:
    os.makedirs(cache, exist_ok=True)
    with open(path, "wb") as file:
      file.write(serialization.to_bytes(params))
  return model, params


def make_extractor(fid_config, dataset: str, train_images, train_labels):
  """(name of the features, fn: images float [N, H, W, C] in [0, 1] -> [N, D])."""
  if fid_config.inception_weights:
    variables = inception.load_weights(fid_config.inception_weights)
    return INCEPTION, lambda x: map_in_batches(
        lambda b: inception.features(variables, b), x, 100
    )
  model, params = offline_classifier(
      fid_config, dataset, train_images, train_labels
  )
  apply = jax.jit(lambda x: model.apply({"params": params}, x)[0])
  return OFFLINE, lambda x: map_in_batches(
      apply, np.asarray(x, np.float32), 500
  )
