"""Random-access data sources yielding ``{"image": uint8 [H, W, C], "label": int}``.

Four sources are chosen by ``config.data.source``:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (no download), split
  deterministically 80/20 into train/test.
* ``npz``: files with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (uint8 images
  ``[N, H, W]`` or ``[N, H, W, C]``), e.g. ``../shared/datasets/mnist.npz``;
  several comma-separated files are concatenated (see ``npz.py``).
* ``tfds``: ``tfds.data_source`` over a prepared TFDS dataset (mnist, fashion_mnist,
  cifar10, celeb_a); this is what users with a network use.
* ``celeba_folder``: CelebA's standard distribution in a folder (``celeba.py``).

Every source is a sequence (``__len__`` / ``__getitem__``) that grain can read.
``targets(source)`` gives a split's labels (and attributes, where the dataset
has them) without decoding images; ``read_images`` reads a range of images, so
evaluation can stream a split instead of holding it in memory. tfds's celeb_a
and the CelebA folder are centre-cropped (``data.center_crop``) and resized
(``data.image_size``) on the host.
``data.train_subset > 0`` keeps a fixed random subset of that many training
examples (the same for every run seed).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from simvae_jax.data import celeba, npz

SOURCES = ("digits", "npz", "tfds", "celeba_folder")
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
  """In-memory source over uint8 images ``[N, H, W, C]`` and int labels ``[N]``
  (and optionally attributes ``[N, A]`` in {0, 1} with their names)."""

  images: np.ndarray
  labels: np.ndarray
  attributes: np.ndarray | None = None
  attribute_names: tuple[str, ...] = ()

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

  def targets(self) -> dict[str, np.ndarray]:
    targets = {"label": self.labels}
    if self.attributes is not None:
      targets["attributes"] = self.attributes
    return targets


class TfdsSource:
  """Wraps ``tfds.data_source`` so elements are ``{"image", "label"}``.

  A dataset that is neither prepared in ``data_dir`` nor downloadable (no
  network, or a preparation dependency missing) is reported in one line with
  the ways forward.
  """

  def __init__(
      self,
      name: str,
      split: str,
      data_dir: str | None,
      download: bool,
      center_crop: int = 0,
      image_size: int = 0,
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
    self._arguments = (name, split, data_dir)
    self.crop, self.size = center_crop, image_size
    features = getattr(self._source, "dataset_info", None)
    attributes = (
        features.features["attributes"]
        if (features is not None and "attributes" in features.features)
        else None
    )
    self.attribute_names = tuple(attributes.keys()) if attributes else ()

  def __len__(self) -> int:
    return len(self._source)

  def _label(self, record) -> np.int32:
    for key in self._label_path:
      record = record[key]
    return np.int32(record)

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self._source[index]
    image = np.asarray(record["image"], dtype=np.uint8)
    if image.ndim == 2:
      image = image[..., None]
    if self.crop or self.size:
      image = celeba.center_crop_and_resize(image, self.crop, self.size)
    return {"image": image, "label": self._label(record)}

  def _records_without_images(self):
    """The records with undecoded images, or with decoded ones where tfds
    cannot skip decoding (it needs TensorFlow for that)."""
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    name, split, data_dir = self._arguments
    try:
      records = tfds.data_source(
          name,
          split=split,
          data_dir=data_dir,
          download=False,
          decoders={"image": tfds.decode.SkipDecoding()},
      )
      records[0]
      return records
    except ImportError:
      return self._source

  def targets(self) -> dict[str, np.ndarray]:
    """Labels (and attributes) of every record, images not decoded."""
    records = self._records_without_images()
    labels, attributes = [], []
    for index in range(len(records)):
      record = records[index]
      labels.append(self._label(record))
      if self.attribute_names:
        attributes.append(
            [bool(record["attributes"][a]) for a in self.attribute_names]
        )
    targets = {"label": np.asarray(labels, np.int32)}
    if attributes:
      targets["attributes"] = np.asarray(attributes, np.int8)
    return targets


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

  @property
  def attribute_names(self) -> tuple[str, ...]:
    return attribute_names(self._source)

  def targets(self) -> dict[str, np.ndarray]:
    return {k: v[self._indices] for k, v in targets(self._source).items()}


def random_subset(source, size: int):
  """A fixed random subset of ``size`` examples (seed 0, in original order)."""
  if size > len(source):
    raise ValueError(
        f"data.train_subset={size} exceeds the {len(source)} "
        f"training examples"
    )
  indices = np.sort(np.random.default_rng(0).permutation(len(source))[:size])
  if isinstance(source, ArraySource):
    attributes = (
        None if source.attributes is None else source.attributes[indices]
    )
    return ArraySource(
        source.images[indices],
        source.labels[indices],
        attributes,
        source.attribute_names,
    )
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
        data_config.get("center_crop", 0),
        data_config.get("image_size", 0),
    )
  if data_config.source == "celeba_folder":
    return celeba.CelebAFolderSource(
        data_config.path,
        split,
        data_config.get("center_crop", 140),
        data_config.get("image_size", 64),
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


def attribute_names(source) -> tuple[str, ...]:
  """Names of the source's attributes (``()`` if it has none)."""
  return tuple(getattr(source, "attribute_names", ()))


def targets(source, limit: int | None = None) -> dict[str, np.ndarray]:
  """The first ``limit`` examples' targets: ``{"label": int32 [N]}`` and, for
  sources with attributes, ``"attributes": int8 [N, A]`` in {0, 1}."""
  if hasattr(source, "targets"):
    values = source.targets()
  else:
    count = len(source) if limit is None else min(limit, len(source))
    values = {
        "label": np.asarray(
            [source[i]["label"] for i in range(count)], np.int32
        )
    }
  return {k: np.asarray(v)[:limit] for k, v in values.items()}


def read_images(source, start: int, stop: int) -> np.ndarray:
  """uint8 images [stop - start, H, W, C] of examples start..stop-1."""
  if isinstance(source, ArraySource):
    return source.images[start:stop]
  return np.stack(
      [source[i]["image"] for i in range(start, min(stop, len(source)))]
  )


def head(source, count: int | None):
  """The first ``count`` examples of a source (all if None)."""
  if count is None or count >= len(source):
    return source
  if isinstance(source, ArraySource):
    attributes = (
        None if source.attributes is None else source.attributes[:count]
    )
    return ArraySource(
        source.images[:count],
        source.labels[:count],
        attributes,
        source.attribute_names,
    )
  return SubsetSource(source, np.arange(count))
