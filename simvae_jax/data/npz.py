"""Offline datasets as ``.npz`` files: ``x_{split}`` uint8 images ``[N, H, W]`` or
``[N, H, W, C]`` and ``y_{split}`` integer labels ``[N]``.

``data.path`` may list several files separated by commas; the arrays of a split
are concatenated in that order over the files that have it, so a dataset split
into parts (e.g. CIFAR-10's two training halves plus its test file) reads as
one. Every problem with a file is reported as one ``ValueError`` naming the
file and what is wrong.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np


def split_paths(path: str) -> list[str]:
  """The comma-separated files of ``data.path``."""
  paths = [p.strip() for p in str(path).split(",") if p.strip()]
  if not paths:
    raise ValueError(
        "data.source='npz' needs --config.data.path=FILE.npz "
        "(several files: comma-separated)"
    )
  return paths


def _read(path: str, split: str):
  """(images, labels) of ``split`` in one file, or None if it has neither."""
  if not os.path.exists(path):
    raise ValueError(f"No such .npz file: {path}")
  if os.path.isdir(path):
    raise ValueError(f"{path} is a directory, not an .npz file")
  keys = (f"x_{split}", f"y_{split}")
  try:
    with np.load(path, allow_pickle=False) as file:
      names = list(file.files)
      arrays = {key: file[key] for key in keys if key in names}
  except (
      OSError,
      ValueError,
      AttributeError,
      zipfile.BadZipFile,
      EOFError,
  ) as error:
    raise ValueError(
        f"Cannot read {path} as an .npz file of named arrays "
        f"({type(error).__name__}: {error})"
    ) from None
  if not arrays:
    return None, names
  if len(arrays) == 1:
    (present,) = arrays
    missing = (set(keys) - {present}).pop()
    raise ValueError(f"{path} has {present} but lacks {missing}")
  return _validated(path, split, *(arrays[key] for key in keys)), None


def _validated(path: str, split: str, images: np.ndarray, labels: np.ndarray):
  where = f"{path}: x_{split}"
  if images.dtype != np.uint8:
    raise ValueError(
        f"{where} has dtype {images.dtype}; images must be uint8 (0-255)"
    )
  if images.ndim not in (3, 4):
    raise ValueError(
        f"{where} has shape {images.shape}; images must be "
        f"[N, H, W] or [N, H, W, C]"
    )
  if len(images) == 0:
    raise ValueError(f"{where} is empty")
  if images.ndim == 3:
    images = images[..., None]
  if labels.ndim == 2 and labels.shape[1] == 1:
    labels = labels[:, 0]
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(
        f"{path}: y_{split} must be integer class labels [N], got "
        f"{labels.dtype} {labels.shape}"
    )
  if len(labels) != len(images):
    raise ValueError(
        f"{path}: {len(images)} images in x_{split} but {len(labels)} "
        f"labels in y_{split}"
    )
  unlabelled = np.all(labels == -1)  # e.g. STL-10's unlabelled split
  if labels.min() < 0 and not unlabelled:
    raise ValueError(
        f"{path}: y_{split} has negative labels ({labels.min()}); "
        f"classes must be numbered 0, 1, ... (or all -1: an unlabelled split)"
    )
  return images, labels.astype(np.int32)


def load_split(path: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """uint8 images [N, H, W, C] and int32 labels [N] of ``split`` ('train' or
  'test'), concatenated over the comma-separated files of ``path``."""
  parts, keys_seen = [], {}
  for file in split_paths(path):
    part, keys = _read(file, split)
    if part is None:
      keys_seen[file] = keys
    else:
      parts.append((file, part))
  if not parts:
    raise ValueError(
        f"No file of data.path has x_{split} and y_{split}: "
        + "; ".join(f"{f} has {k}" for f, k in keys_seen.items())
    )
  shapes = {file: images.shape[1:] for file, (images, _) in parts}
  if len(set(shapes.values())) > 1:
    raise ValueError(f"x_{split} images differ in shape across files: {shapes}")
  return (
      np.concatenate([images for _, (images, _) in parts]),
      np.concatenate([labels for _, (_, labels) in parts]),
  )
