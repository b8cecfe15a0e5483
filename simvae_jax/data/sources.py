"""Random-access data sources yielding ``{"image": uint8 [H, W, C], "label": int}``.

Three sources are chosen by ``config.data.source``:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (no download), split
  deterministically 80/20 into train/test.
* ``npz``: files with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (uint8 images
  ``[N, H, W]`` or ``[N, H, W, C]``), e.g. ``../shared/datasets/mnist.npz``;
  several comma-separated files are concatenated (see ``npz.py``).
* ``tfds``: ``tfds.data_source`` over a prepared TFDS dataset (mnist, fashion_mnist,
  cifar10, celeb_a); this is what users with a network use.

Every source is a sequence (``__len__`` / ``__getitem__``) that grain can read.
``data.train_subset > 0`` keeps a fixed random subset of that many training
examples (the same for every run seed).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from simvae_jax.data import npz

SOURCES = ("digits", "npz", "tfds")
SPLITS = ("train", "test")

# Label used for each TFDS dataset; CelebA has attributes instead of a class label.
_TFDS_LABEL_KEYS = {
    "mnist": "label",
    "fashion_mnist": "label",
    "cifar10": "label",
    "celeb_a": "attributes/Male",
}


@dataclasses.dataclass(frozen=True)
class ArraySource:
  """In-memory source over uint8 images ``[N, H, W, C]`` and int labels ``[N]``."""

  images: np.ndarray
  labels: np.ndarray

  def __post_init__(self):
    if self.images.dtype != np.uint8 or self.images.ndim != 4:
      raise ValueError(
          f"images must be uint8 [N, H, W, C], got {self.images.dtype} "
          f"{self.images.shape}"
      )
    if len(self.labels) != len(self.images):
      raise ValueError(
          f"{len(self.images)} images but {len(self.labels)} labels"
      )

  def __len__(self) -> int:
    return len(self.images)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return {"image": self.images[index], "label": self.labels[index]}


class TfdsSource:
  """Wraps ``tfds.data_source`` so elements are ``{"image", "label"}``.

  A dataset that is neither prepared in ``data_dir`` nor downloadable (no
  network, or a preparation dependency missing) is reported in one line with
  the ways forward.
  """

  def __init__(
      self, name: str, split: str, data_dir: str | None, download: bool
  ):
    if name not in _TFDS_LABEL_KEYS:
      raise ValueError(
          f"Unsupported tfds dataset {name!r}; "
          f"choose one of {sorted(_TFDS_LABEL_KEYS)}"
      )
    import tensorflow_datasets as tfds  # Imported lazily: slow, and optional offline.

    try:
      self._source = tfds.data_source(
          name, split=split, data_dir=data_dir, download=download
      )
    except (
        Exception
    ) as error:  # tfds raises many types; all mean "not available"
      where = data_dir or "tfds's default data_dir (~/tensorflow_datasets)"
      cause = " ".join(str(error).split())[:300]
      raise ValueError(
          f"tfds could not {'download and prepare' if download else 'find'} "
          f"'{name}' ({split}) in {where}: {type(error).__name__}: {cause}. "
          f"Prepare it once on a machine with a network (pip install -e "
          f"'.[tfds]' adds TensorFlow, which some datasets need), or run offline "
          f"with --config.data.source=npz --config.data.path=FILE.npz "
          f"(python -m simvae_jax.data.export writes such a file)."
      ) from error
    self._label_path = _TFDS_LABEL_KEYS[name].split("/")

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self._source[index]
    label = record
    for key in self._label_path:
      label = label[key]
    image = np.asarray(record["image"], dtype=np.uint8)
    if image.ndim == 2:
      image = image[..., None]
    return {"image": image, "label": np.int32(label)}


def _digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's 1,797 digits as uint8 [N, 8, 8, 1]; fixed 80/20 split."""
  from sklearn.datasets import load_digits

  digits = load_digits()
  images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  order = np.random.default_rng(0).permutation(len(images))
  num_train = int(0.8 * len(images))
  chosen = order[:num_train] if split == "train" else order[num_train:]
  return images[chosen], digits.target[chosen].astype(np.int32)


class SubsetSource:
  """The examples ``indices`` of another source."""

  def __init__(self, source, indices: np.ndarray):
    self._source, self._indices = source, indices

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self._source[int(self._indices[index])]


def random_subset(source, size: int):
  """A fixed random subset of ``size`` examples (seed 0, in original order)."""
  if size > len(source):
    raise ValueError(
        f"data.train_subset={size} exceeds the {len(source)} "
        f"training examples"
    )
  indices = np.sort(np.random.default_rng(0).permutation(len(source))[:size])
  if isinstance(source, ArraySource):
    return ArraySource(source.images[indices], source.labels[indices])
  return SubsetSource(source, indices)


def _load_split(data_config, split: str):
  if data_config.source == "digits":
    return ArraySource(*_digits_arrays(split))
  if data_config.source == "npz":
    return ArraySource(*npz.load_split(data_config.path, split))
  if data_config.source == "tfds":
    return TfdsSource(
        data_config.name,
        split,
        data_config.get("data_dir") or None,
        data_config.get("download", True),
    )
  raise ValueError(
      f"Unknown data.source {data_config.source!r}; " f"choose one of {SOURCES}"
  )


def load_source(data_config, split: str) -> Sequence[dict[str, Any]]:
  """Returns the random-access source for ``split`` ('train' or 'test')."""
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  source = _load_split(data_config, split)
  subset = data_config.get("train_subset", 0)
  if split == "train" and subset:
    source = random_subset(source, subset)
  return source


def read_all(
    source: Sequence[dict[str, Any]], limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Materialises a source as (uint8 images [N, H, W, C], int32 labels [N])."""
  if isinstance(source, ArraySource):
    return source.images[:limit], source.labels[:limit]
  count = len(source) if limit is None else min(limit, len(source))
  records = [source[i] for i in range(count)]
  return (
      np.stack([r["image"] for r in records]),
      np.asarray([r["label"] for r in records], np.int32),
  )
