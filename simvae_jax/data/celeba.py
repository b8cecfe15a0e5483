"""CelebA as users have it: the standard distribution's folder.

``data.path`` is a folder with ``img_align_celeba/*.jpg`` (178 x 218 aligned
faces), ``list_attr_celeba.txt`` (a count line, the 40 attribute names, then
``filename v_1 ... v_40`` with values -1 / 1) and ``list_eval_partition.txt``
(``filename p`` with p = 0 train, 1 validation, 2 test). Splits: ``train`` is
partition 0 (162,770 images), ``test`` partition 2 (19,962); the validation
partition is not used (model selection uses a split of train).

Images are decoded once, by parallel worker processes, into a memory-mapped
uint8 cache (``cache.py``) that every run and evaluation at the same
resolution shares: cropped and resized on the host (``center_crop_and_resize``)
to a centred square of ``data.center_crop`` pixels (140 by default, the usual
crop of the face; 0 keeps the whole image, distorting its aspect), resized to
``data.image_size`` (64) with antialiasing. The label is ``Male`` (the content
task); ``targets()`` gives every attribute.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os

import numpy as np
import tqdm

from simvae_jax.data import cache
from simvae_jax.data.base import ArraySource

SPLIT_PARTITIONS = {"train": 0, "validation": 1, "test": 2}
LABEL_ATTRIBUTE = "Male"


def center_crop_and_resize(
    image: np.ndarray, crop: int, size: int
) -> np.ndarray:
  """uint8 [H, W, C] -> uint8 [size, size, C]: a centred ``crop`` x ``crop``
  square (whole image if 0), resized with antialiasing (``size`` 0: as is)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  height, width = image.shape[:2]
  if crop:
    if crop > min(height, width):
      raise ValueError(
          f"data.center_crop={crop} exceeds the {height}x{width} image"
      )
    top, left = (height - crop) // 2, (width - crop) // 2
    image = image[top : top + crop, left : left + crop]
  if size and image.shape[:2] != (size, size):
    resized = Image.fromarray(image).resize(
        (size, size), Image.Resampling.BILINEAR, reducing_gap=None
    )
    image = np.asarray(resized)
  return np.ascontiguousarray(image, np.uint8)


def _read_lines(path: str) -> list[list[str]]:
  if not os.path.exists(path):
    raise ValueError(
        f"CelebA folder lacks {os.path.basename(path)} (looked for {path})"
    )
  with open(path) as file:
    return [line.split() for line in file if line.strip()]


def read_annotations(root: str):
  """(filenames [N], attribute names [40], attributes int8 [N, 40] in {0, 1},
  partitions [N]) of the folder, in ``list_attr_celeba.txt`` order."""
  lines = _read_lines(os.path.join(root, "list_attr_celeba.txt"))
  names = tuple(lines[1])
  rows = lines[2:]
  filenames = [row[0] for row in rows]
  values = np.asarray([[int(v) for v in row[1:]] for row in rows], np.int8)
  if values.shape[1] != len(names):
    raise ValueError(
        f"list_attr_celeba.txt: {len(names)} names but rows of "
        f"{values.shape[1]} values"
    )
  partition_of = {
      row[0]: int(row[1])
      for row in _read_lines(os.path.join(root, "list_eval_partition.txt"))
  }
  missing = [f for f in filenames if f not in partition_of]
  if missing:
    raise ValueError(
        f"list_eval_partition.txt lacks {len(missing)} images, "
        f"e.g. {missing[0]}"
    )
  partitions = np.asarray([partition_of[f] for f in filenames], np.int8)
  return np.asarray(filenames), names, (values > 0).astype(np.int8), partitions


def _decode(root: str, filename: str, crop: int, size: int) -> np.ndarray:
  """uint8 [size, size, 3]: one image of the folder, cropped and resized."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  with Image.open(os.path.join(root, "img_align_celeba", filename)) as file:
    image = np.asarray(file.convert("RGB"))
  return center_crop_and_resize(image, crop, size)


def _decoded_shape(root: str, filename: str, crop: int, size: int):
  """(H, W, 3) of the decoded images, without decoding one when the config
  fixes it (then the cache alone can serve the split)."""
  if size or crop:
    side = size or crop
    return (side, side, 3)
  from PIL import Image  # pylint: disable=import-outside-toplevel

  with Image.open(os.path.join(root, "img_align_celeba", filename)) as file:
    width, height = file.size  # read from the header
  return (height, width, 3)


def _decode_chunk(
    cache_file: str, start: int, root: str, filenames, crop, size
):
  """Worker: decodes ``filenames`` into rows ``start...`` of the cache file
  being built (opened here as a writable memory map)."""
  images = np.load(cache_file, mmap_mode="r+")
  for row, filename in enumerate(filenames, start):
    images[row] = _decode(root, filename, crop, size)
  images.flush()
  return len(filenames)


def _decode_in_parallel(root, filenames, crop, size, workers: int):
  """``cache.Fill`` decoding every image of ``filenames`` into the cache by
  ``workers`` processes, with a progress bar."""
  chunk = 256

  def fill(cache_file: str, images: np.ndarray) -> None:
    starts = range(0, len(filenames), chunk)
    if workers == 1 or len(starts) == 1:  # not worth starting processes
      for row, filename in enumerate(tqdm.tqdm(filenames, desc="decoding")):
        images[row] = _decode(root, filename, crop, size)
      return
    # The workers write into cache_file themselves (no images are pickled).
    context = multiprocessing.get_context("spawn")  # JAX's threads: no fork
    workers_used = min(workers, len(starts))
    with concurrent.futures.ProcessPoolExecutor(workers_used, context) as pool:
      jobs = [
          pool.submit(
              _decode_chunk,
              cache_file,
              start,
              root,
              filenames[start : start + chunk],
              crop,
              size,
          )
          for start in starts
      ]
      with tqdm.tqdm(
          total=len(filenames),
          unit="image",
          desc=f"decoding CelebA once ({workers_used} processes)",
      ) as bar:
        for job in concurrent.futures.as_completed(jobs):
          bar.update(job.result())

  return fill


def load(data_config, split: str) -> ArraySource:
  """One split of the CelebA folder ``data.path``: its images decoded,
  cropped (``data.center_crop``, 140) and resized (``data.image_size``, 64)
  once into a memory-mapped cache (``data.cache_dir``, by default
  ``simvae_cache/`` in the folder) by ``data.decode_workers`` processes (0:
  one per CPU), then read from there by training and evaluation alike."""
  root = data_config.path
  if not root or not os.path.isdir(root):
    raise ValueError(
        f"data.source='celeba_folder' needs --config.data.path=DIR "
        f"(the CelebA folder); {root!r} is not a folder"
    )
  crop = data_config.get("center_crop", 140)
  size = data_config.get("image_size", 64)
  if split not in SPLIT_PARTITIONS:
    raise ValueError(
        f"The CelebA folder has the splits {tuple(SPLIT_PARTITIONS)}, not "
        f"{split!r}"
    )
  filenames, names, attributes, partitions = read_annotations(root)
  chosen = partitions == SPLIT_PARTITIONS[split]
  filenames, attributes = filenames[chosen], attributes[chosen]
  if not len(filenames):
    raise ValueError(f"The CelebA folder {root} has no {split} images")
  first = _decoded_shape(root, filenames[0], crop, size)
  provenance = {
      "source": "celeba_folder",
      "folder": os.path.abspath(root),
      "split": split,
      "center_crop": crop,
      "image_size": size,
      "files": hashlib.sha256("\n".join(filenames).encode()).hexdigest(),
  }
  directory = data_config.get("cache_dir", "") or cache.default_dir(root)
  name = f"celeba_{split}_crop{crop}_size{size}"
  workers = data_config.get("decode_workers", 0) or os.cpu_count() or 1
  images, _ = cache.memory_mapped(
      os.path.join(directory, name),
      provenance,
      (len(filenames), *first),
      _decode_in_parallel(root, filenames, crop, size, workers),
  )
  labels = attributes[:, names.index(LABEL_ATTRIBUTE)].astype(np.int32)
  return ArraySource(images, labels, attributes, names)
