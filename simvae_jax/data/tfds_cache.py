"""tfds datasets decoded once: ``load(config.data, split)``.

``tfds.data_source`` parses and decodes a PNG or JPEG per record, about 6,500
images/s, which was paid again every epoch. Here each split is decoded (and,
for celeb_a, cropped and resized) once, with a progress bar, into a uint8
array: in memory when it fits in ``data.cache_memory_gib``, otherwise into a
memory-mapped cache beside the tfds data (``cache.py``: provenance recorded,
rebuilt when it changes, safe against interrupted builds).

Any tfds image dataset works: ``data.label_key`` names the feature holding
the class label (``label``; ``attributes/Male`` for celeb_a), and datasets
with an ``attributes`` feature also give those (the CelebA tasks). A split
without labels (STL-10's ``unlabelled``, label -1) serves training only.

A dataset that is neither prepared in ``data_dir`` nor downloadable (no
network, or a preparation dependency missing) is reported in one line with
the ways forward.
"""

from __future__ import annotations

import os

import numpy as np
import tqdm

from simvae_jax.data import cache, celeba
from simvae_jax.data.base import ArraySource


def _open(name: str, split: str, data_dir: str | None, download: bool):
  import tensorflow_datasets as tfds  # Imported lazily: slow, optional offline.

  try:
    return tfds.data_source(
        name, split=split, data_dir=data_dir, download=download
    )
  except Exception as error:  # tfds raises many types; all mean "not there"
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


def _image(record, crop: int, size: int) -> np.ndarray:
  image = np.asarray(record["image"], dtype=np.uint8)
  if image.ndim == 2:
    image = image[..., None]
  if crop or size:
    image = celeba.center_crop_and_resize(image, crop, size)
  return image


def _check_label_key(record, label_path: list[str], name: str) -> None:
  value = record
  for key in label_path:
    if not isinstance(value, dict) or key not in value:
      raise ValueError(
          f"tfds {name!r} has no feature {'/'.join(label_path)!r} for "
          f"data.label_key; its features: {sorted(record)}"
      )
    value = value[key]


def load(data_config, split: str) -> ArraySource:
  """The decoded split of the tfds dataset ``data.name``."""
  name = data_config.name
  records = _open(
      name,
      split,
      data_config.get("data_dir") or None,
      data_config.get("download", True),
  )
  crop = data_config.get("center_crop", 0)
  size = data_config.get("image_size", 0)
  info = getattr(records, "dataset_info", None)
  features = info.features if info is not None else {}
  attribute_names = (
      tuple(features["attributes"].keys()) if "attributes" in features else ()
  )
  label_path = data_config.get("label_key", "label").split("/")
  count = len(records)
  _check_label_key(records[0], label_path, name)
  shape = (count, *_image(records[0], crop, size).shape)
  targets = {"label": np.empty(count, np.int32)}
  if attribute_names:
    targets["attributes"] = np.empty((count, len(attribute_names)), np.int8)

  def fill(path, images: np.ndarray) -> None:
    del path
    for index in tqdm.trange(count, desc=f"decoding {name} {split} once"):
      record = records[index]
      images[index] = _image(record, crop, size)
      label = record
      for key in label_path:
        label = label[key]
      targets["label"][index] = label
      if attribute_names:
        targets["attributes"][index] = [
            bool(record["attributes"][a]) for a in attribute_names
        ]

  if np.prod(shape) <= data_config.get("cache_memory_gib", 1.0) * 2**30:
    images = cache.in_memory(shape, fill)
  else:
    provenance = {
        "source": "tfds",
        "name": name,
        "version": str(getattr(info, "version", "")),
        "split": split,
        "center_crop": crop,
        "image_size": size,
    }
    beside = getattr(info, "data_dir", "") or ""
    directory = data_config.get("cache_dir", "") or cache.default_dir(beside)
    images, targets = cache.memory_mapped(
        os.path.join(directory, f"{name}_{split}_crop{crop}_size{size}"),
        provenance,
        shape,
        fill,
        extras=lambda: targets,
    )
  return ArraySource(
      images,
      targets["label"],
      targets.get("attributes"),
      attribute_names,
  )
