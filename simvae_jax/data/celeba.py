"""CelebA as users have it: the standard distribution's folder.

``data.path`` is a folder with ``img_align_celeba/*.jpg`` (178 x 218 aligned
faces), ``list_attr_celeba.txt`` (a count line, the 40 attribute names, then
``filename v_1 ... v_40`` with values -1 / 1) and ``list_eval_partition.txt``
(``filename p`` with p = 0 train, 1 validation, 2 test). Splits: ``train`` is
partition 0 (162,770 images), ``test`` partition 2 (19,962); the validation
partition is not used (model selection uses a split of train).

Images are decoded when read (by grain's reader threads while training), then
cropped and resized on the host (``center_crop_and_resize``): a centred square
of ``data.center_crop`` pixels (140 by default, the usual crop of the face;
0 keeps the whole image, distorting its aspect), resized to ``data.image_size``
(64) with antialiasing; uint8 out. The label is ``Male`` (the content task);
``targets()`` gives every attribute without decoding images.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

SPLIT_PARTITIONS = {"train": 0, "test": 2}
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


class CelebAFolderSource:
  """Random-access source over one split of a CelebA folder."""

  def __init__(
      self, root: str, split: str, center_crop: int = 140, image_size: int = 64
  ):
    if not root or not os.path.isdir(root):
      raise ValueError(
          f"data.source='celeba_folder' needs --config.data.path=DIR "
          f"(the CelebA folder); {root!r} is not a folder"
      )
    filenames, names, attributes, partitions = read_annotations(root)
    chosen = partitions == SPLIT_PARTITIONS[split]
    self.root, self.crop, self.size = root, center_crop, image_size
    self.filenames, self.attribute_names = filenames[chosen], names
    self.attributes = attributes[chosen]
    self._label = self.attributes[:, names.index(LABEL_ATTRIBUTE)].astype(
        np.int32
    )

  def __len__(self) -> int:
    return len(self.filenames)

  def __getitem__(self, index: int) -> dict[str, Any]:
    from PIL import Image  # pylint: disable=import-outside-toplevel

    path = os.path.join(self.root, "img_align_celeba", self.filenames[index])
    with Image.open(path) as file:
      image = np.asarray(file.convert("RGB"))
    return {
        "image": center_crop_and_resize(image, self.crop, self.size),
        "label": self._label[index],
    }

  def targets(self) -> dict[str, np.ndarray]:
    return {"label": self._label, "attributes": self.attributes}
