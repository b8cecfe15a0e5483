"""The interface every data source has, and the two generic sources.

A source is one split of a dataset read a batch at a time: ``read(indices)``
is one gather for in-memory and memory-mapped images, so the training
pipeline and evaluation never touch examples one by one.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import numpy as np


class Source(abc.ABC):
  """One split of a dataset, read a batch at a time.

  ``len(source)`` examples; ``read(indices)`` gives ``{"image": uint8 [n, H,
  W, C], "label": int32 [n]}`` for an int array of indices (one gather for
  in-memory and memory-mapped data); ``targets()`` every example's labels
  (and attributes) without reading images; ``attribute_names`` the names of
  the attributes (``()`` if none).
  """

  attribute_names: tuple[str, ...] = ()

  @abc.abstractmethod
  def __len__(self) -> int:
    ...

  @abc.abstractmethod
  def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    ...

  @abc.abstractmethod
  def targets(self) -> dict[str, np.ndarray]:
    """``{"label": int32 [N]}`` and, where the dataset has them,
    ``"attributes": int8 [N, A]`` in {0, 1}."""

  def __getitem__(self, index: int) -> dict[str, Any]:
    """One example: ``{"image": uint8 [H, W, C], "label": int32}``."""
    batch = self.read(np.asarray([index]))
    return {name: value[0] for name, value in batch.items()}

  @property
  def image_shape(self) -> tuple[int, ...]:
    return tuple(self[0]["image"].shape)

  def subset(self, indices: np.ndarray) -> "Source":
    """The examples ``indices`` (int [m]) of this source."""
    return SubsetSource(self, np.asarray(indices))


@dataclasses.dataclass(frozen=True)
class ArraySource(Source):
  """Source over uint8 images ``[N, H, W, C]`` (in memory or memory-mapped)
  and int labels ``[N]`` (and optionally attributes ``[N, A]`` in {0, 1}
  with their names)."""

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
    object.__setattr__(self, "labels", np.asarray(self.labels, np.int32))

  def __len__(self) -> int:
    return len(self.images)

  def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    return {"image": self.images[indices], "label": self.labels[indices]}

  @property
  def image_shape(self) -> tuple[int, ...]:
    return tuple(self.images.shape[1:])

  def targets(self) -> dict[str, np.ndarray]:
    targets = {"label": self.labels}
    if self.attributes is not None:
      targets["attributes"] = self.attributes
    return targets

  def subset(self, indices: np.ndarray) -> "ArraySource":
    """A slice stays a view (no copy of memory-mapped images)."""
    indices = np.asarray(indices)
    if len(indices) and np.array_equal(
        indices, np.arange(indices[0], indices[0] + len(indices))
    ):
      indices = slice(int(indices[0]), int(indices[0]) + len(indices))
    attributes = None if self.attributes is None else self.attributes[indices]
    return ArraySource(
        self.images[indices],
        self.labels[indices],
        attributes,
        self.attribute_names,
    )


class SubsetSource(Source):
  """The examples ``indices`` of another source."""

  def __init__(self, source: Source, indices: np.ndarray):
    self._source, self._indices = source, indices

  def __len__(self) -> int:
    return len(self._indices)

  def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    return self._source.read(self._indices[indices])

  @property
  def attribute_names(self) -> tuple[str, ...]:
    return self._source.attribute_names

  def targets(self) -> dict[str, np.ndarray]:
    return {k: v[self._indices] for k, v in self._source.targets().items()}
