"""The data sources of a config: ``load_source(config.data, role)``.

A run reads three roles, each a split of the dataset named in the config:
``train`` (self-supervised training, ``data.train_split``), ``probe`` (the
labelled split the probes, kNN and GMM fit on, with a validation part held
out; ``data.probe_split``, often the same split) and ``test``
(``data.test_split``). STL-10, for example, trains on ``unlabelled`` and
probes on ``train``.

Four sources are chosen by ``config.data.source``:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (no download), split
  deterministically 80/20 into train/test.
* ``npz``: files with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (uint8 images
  ``[N, H, W]`` or ``[N, H, W, C]``), e.g. ``../shared/datasets/mnist.npz``;
  several comma-separated files are concatenated (see ``npz.py``).
* ``tfds``: a prepared TFDS dataset (mnist, fashion_mnist, cifar10, celeb_a),
  decoded once into a uint8 cache (``tfds_cache.py``); this is what users with
  a network use.
* ``celeba_folder``: CelebA's standard distribution in a folder, decoded once
  into a memory-mapped cache (``celeba.py``).

Every source has the interface of ``base.Source`` (length, batch reads by
indices, targets, attribute names). ``targets(source)`` gives a split's labels
(and attributes, where the dataset has them); ``read_images`` reads a range of
images, so evaluation can stream a split instead of holding it in memory.
tfds's celeb_a and the CelebA folder are centre-cropped (``data.center_crop``)
and resized (``data.image_size``) once, when their cache is built.
``data.train_subset > 0`` keeps a fixed random subset of that many training
examples (the same for every run seed).
"""

from __future__ import annotations

import numpy as np

from simvae_jax.data import celeba, npz, tfds_cache
from simvae_jax.data.base import ArraySource, Source, SubsetSource

SOURCES = ("digits", "npz", "tfds", "celeba_folder")
ROLES = ("train", "probe", "test")

__all__ = ["ArraySource", "Source", "SubsetSource", "load_source"]


def _digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's 1,797 digits as uint8 [N, 8, 8, 1]; fixed 80/20 split."""
  from sklearn.datasets import load_digits

  digits = load_digits()
  images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  order = np.random.default_rng(0).permutation(len(images))
  num_train = int(0.8 * len(images))
  if split not in ("train", "test"):
    raise ValueError(
        f"The digits have the splits train and test, not {split!r}"
    )
  chosen = order[:num_train] if split == "train" else order[num_train:]
  return images[chosen], digits.target[chosen].astype(np.int32)


def random_subset(source: Source, size: int) -> Source:
  """A fixed random subset of ``size`` examples (seed 0, in original order)."""
  if size > len(source):
    raise ValueError(
        f"data.train_subset={size} exceeds the {len(source)} "
        f"training examples"
    )
  indices = np.sort(np.random.default_rng(0).permutation(len(source))[:size])
  return source.subset(indices)


def _load_split(data_config, split: str) -> Source:
  if data_config.source == "digits":
    return ArraySource(*_digits_arrays(split))
  if data_config.source == "npz":
    return ArraySource(*npz.load_split(data_config.path, split))
  if data_config.source == "tfds":
    return tfds_cache.load(data_config, split)
  if data_config.source == "celeba_folder":
    return celeba.load(data_config, split)
  raise ValueError(
      f"Unknown data.source {data_config.source!r}; " f"choose one of {SOURCES}"
  )


def split_name(data_config, role: str) -> str:
  """The dataset split that plays ``role`` ('train', 'probe' or 'test')."""
  if role not in ROLES:
    raise ValueError(f"role must be one of {ROLES}, got {role!r}")
  default = "train" if role == "probe" else role
  return data_config.get(f"{role}_split", default) or default


def load_source(data_config, role: str) -> Source:
  """The source of the split that plays ``role`` ('train', 'probe', 'test');
  ``data.train_subset`` applies to the training role."""
  source = _load_split(data_config, split_name(data_config, role))
  subset = data_config.get("train_subset", 0)
  if role == "train" and subset:
    source = random_subset(source, subset)
  return source


def read_all(
    source: Source, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """The first ``limit`` examples (all if None) as (uint8 images [N, H, W, C],
  int32 labels [N])."""
  batch = head(source, limit).read(slice(None))
  return batch["image"], batch["label"]


def targets(source: Source, limit: int | None = None) -> dict[str, np.ndarray]:
  """The first ``limit`` examples' targets: ``{"label": int32 [N]}`` and, for
  sources with attributes, ``"attributes": int8 [N, A]`` in {0, 1}."""
  return {k: np.asarray(v)[:limit] for k, v in source.targets().items()}


def read_images(source: Source, start: int, stop: int) -> np.ndarray:
  """uint8 images [stop - start, H, W, C] of examples start..stop-1."""
  return source.read(np.arange(start, min(stop, len(source))))["image"]


def head(source: Source, count: int | None) -> Source:
  """The first ``count`` examples of a source (all if None)."""
  if count is None or count >= len(source):
    return source
  return source.subset(np.arange(count))
