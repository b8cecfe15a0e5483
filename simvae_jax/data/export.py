"""Writes the ``.npz`` files the offline ``npz`` source reads.

From a dataset tfds can provide (on a machine with a network, or with the
dataset already prepared in ``--data_dir``)::

  python -m simvae_jax.data.export --dataset=mnist --out=mnist.npz
  python -m simvae_jax.data.export --dataset=stl10 --splits=unlabelled,train,test --out=stl10.npz

or from the original distribution files, without tfds::

  python -m simvae_jax.data.export --from_files=DIR --dataset=mnist --out=mnist.npz
      # DIR holds train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
      # t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (MNIST and
      # Fashion-MNIST; .gz or not)
  python -m simvae_jax.data.export --from_files=DIR --dataset=cifar10 --out=cifar10.npz
      # DIR is cifar-10-batches-py (data_batch_1..5, test_batch)

The file holds ``x_<split>`` and ``y_<split>`` for each split (by default
``train`` and ``test``; uint8 images [N, H, W] or [N, H, W, C], integer
labels).
"""

from __future__ import annotations

import gzip
import os
import pickle

import ml_collections
import numpy as np
from absl import flags

from simvae_jax import cli
from simvae_jax.data import sources

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR10_BATCHES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}


def _open_maybe_gzip(directory: str, name: str):
  for candidate in (name + ".gz", name):
    path = os.path.join(directory, candidate)
    if os.path.exists(path):
      return (
          gzip.open(path, "rb")
          if candidate.endswith(".gz")
          else open(path, "rb")
      )
  raise ValueError(f"{directory} has neither {name}.gz nor {name}")


def read_idx(file) -> np.ndarray:
  """An IDX array (MNIST's format): magic, dims (big-endian int32), uint8 data."""
  header = file.read(4)
  if header[:2] != b"\0\0" or header[2] != 8:
    raise ValueError("not an unsigned-byte IDX file")
  shape = np.frombuffer(file.read(4 * header[3]), ">i4")
  return np.frombuffer(file.read(), np.uint8).reshape(shape)


def mnist_like_from_files(directory: str) -> dict:
  arrays = {}
  for split, (images, labels) in IDX_FILES.items():
    with _open_maybe_gzip(directory, images) as file:
      arrays[f"x_{split}"] = read_idx(file)
    with _open_maybe_gzip(directory, labels) as file:
      arrays[f"y_{split}"] = read_idx(file)
  return arrays


def cifar10_from_files(directory: str) -> dict:
  """CIFAR-10's python pickles: rows of 3072 bytes in (C, H, W) order."""
  arrays = {}
  for split, names in CIFAR10_BATCHES.items():
    images, labels = [], []
    for name in names:
      with open(os.path.join(directory, name), "rb") as file:
        batch = pickle.load(file, encoding="bytes")
      images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
      labels.append(np.asarray(batch[b"labels"], np.int64))
    arrays[f"x_{split}"] = np.concatenate(images).transpose(0, 2, 3, 1)
    arrays[f"y_{split}"] = np.concatenate(labels)
  return arrays


def from_tfds(
    dataset: str,
    data_dir: str,
    download: bool,
    splits=("train", "test"),
    label_key: str = "label",
) -> dict:
  config = ml_collections.ConfigDict(
      dict(
          source="tfds",
          name=dataset,
          data_dir=data_dir,
          download=download,
          label_key=label_key,
      )
  )
  arrays = {}
  for split in splits:
    config.train_split = split
    images, labels = sources.read_all(sources.load_source(config, "train"))
    arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
  return arrays


FROM_FILES = {
    "mnist": mnist_like_from_files,
    "fashion_mnist": mnist_like_from_files,
    "cifar10": cifar10_from_files,
}


def export(
    dataset: str,
    out: str,
    from_files: str = "",
    data_dir: str = "",
    download: bool = True,
    splits=("train", "test"),
    label_key: str = "label",
) -> dict:
  """Writes ``out`` and returns its arrays."""
  if from_files:
    if dataset not in FROM_FILES:
      raise ValueError(
          f"--from_files reads {sorted(FROM_FILES)}, not {dataset!r}"
      )
    arrays = FROM_FILES[dataset](from_files)
  else:
    arrays = from_tfds(dataset, data_dir, download, splits, label_key)
  np.savez_compressed(out, **arrays)
  return arrays


_DATASET = flags.DEFINE_string(
    "dataset", None, "mnist, fashion_mnist, cifar10, ..."
)
_OUT = flags.DEFINE_string("out", None, "The .npz file to write.")
_FROM_FILES = flags.DEFINE_string(
    "from_files",
    "",
    "Folder of the original " "distribution's files (instead of tfds).",
)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "tfds data_dir ('' = default).")
_DOWNLOAD = flags.DEFINE_bool(
    "download", True, "Let tfds download and prepare."
)
_SPLITS = flags.DEFINE_list(
    "splits",
    ["train", "test"],
    "tfds splits to write (STL-10: unlabelled,train,test).",
)
_LABEL_KEY = flags.DEFINE_string(
    "label_key",
    "label",
    "tfds feature of the label (celeb_a: attributes/Male).",
)


def main(argv):
  del argv
  arrays = export(
      _DATASET.value,
      _OUT.value,
      _FROM_FILES.value,
      _DATA_DIR.value,
      _DOWNLOAD.value,
      _SPLITS.value,
      _LABEL_KEY.value,
  )
  shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
  print(f"Wrote {_OUT.value}: {shapes}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["dataset", "out"])
  cli.run(main)
