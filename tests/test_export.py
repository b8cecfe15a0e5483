"""tfds's real download path fails in one clear line; the .npz exporter writes
what the offline source reads (from tfds or the original distribution files)."""

import gzip
import pickle
import socket
import struct
import time

import ml_collections
import numpy as np
import pytest

from simvae_jax.data import export, sources


def test_tfds_download_path_reaches_the_network_and_fails_clearly(
    tmp_path, monkeypatch
):
  """The real (unmocked) tfds data source and download manager run until they
  resolve the download host; that (blocked here) ends in one clear error, not
  an ImportError from a missing tfds dependency."""
  pytest.importorskip("tensorflow_datasets")
  from tensorflow_datasets.core.download import downloader
  # tfds retries each file 10 times with exponential back-off (~200 s in all);
  # one attempt shows the same path.
  monkeypatch.setattr(downloader, "MAX_RETRIES", 0)
  lookups = []

  def no_network(host, *args, **kwargs):
    lookups.append(host)
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

  monkeypatch.setattr(socket, "getaddrinfo", no_network)
  config = ml_collections.ConfigDict(
      dict(source="tfds", name="mnist", data_dir=str(tmp_path), download=True)
  )
  started = time.time()
  with pytest.raises(ValueError) as error:
    sources.load_source(config, "train")
  message = str(error.value)
  assert lookups, "tfds never tried to reach its download host"
  assert "tfds could not download and prepare 'mnist' (train)" in message
  assert str(tmp_path) in message and "--config.data.source=npz" in message
  assert "\n" not in message
  assert not isinstance(error.value.__cause__, ImportError)
  assert time.time() - started < 120


def test_missing_prepared_tfds_dataset_is_a_clear_error(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  config = ml_collections.ConfigDict(
      dict(source="tfds", name="mnist", data_dir=str(tmp_path), download=False)
  )
  with pytest.raises(ValueError, match="tfds could not find 'mnist'"):
    sources.load_source(config, "test")


def write_idx(path, array):
  header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
      f">{array.ndim}i", *array.shape
  )
  with gzip.open(path, "wb") as file:
    file.write(header + array.astype(np.uint8).tobytes())


def read_back(path, split):
  config = ml_collections.ConfigDict(dict(source="npz", path=str(path)))
  source = sources.load_source(config, split)
  return source.images, source.labels


def test_export_from_mnist_idx_files(tmp_path):
  rng = np.random.default_rng(0)
  arrays = {
      "train": (rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)),
      "test": (rng.integers(0, 256, (3, 28, 28)), rng.integers(0, 10, 3)),
  }
  for split, (images_name, labels_name) in export.IDX_FILES.items():
    write_idx(tmp_path / f"{images_name}.gz", arrays[split][0])
    write_idx(tmp_path / f"{labels_name}.gz", arrays[split][1])
  out = tmp_path / "mnist.npz"
  export.export("mnist", str(out), from_files=str(tmp_path))
  for split, (images, labels) in arrays.items():
    got_images, got_labels = read_back(out, split)
    np.testing.assert_array_equal(got_images[..., 0], images)
    np.testing.assert_array_equal(got_labels, labels)


def test_export_from_cifar10_python_batches(tmp_path):
  rng = np.random.default_rng(1)
  expected = {"train": [], "test": []}
  for split, names in export.CIFAR10_BATCHES.items():
    for name in names:
      images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
      labels = rng.integers(0, 10, 4).tolist()
      rows = images.transpose(0, 3, 1, 2).reshape(4, -1)  # (C, H, W) rows
      with open(tmp_path / name, "wb") as file:
        pickle.dump({b"data": rows, b"labels": labels}, file)
      expected[split].append((images, labels))
  out = tmp_path / "cifar10.npz"
  export.export("cifar10", str(out), from_files=str(tmp_path))
  for split, parts in expected.items():
    images, labels = read_back(out, split)
    np.testing.assert_array_equal(images, np.concatenate([p[0] for p in parts]))
    np.testing.assert_array_equal(labels, np.concatenate([p[1] for p in parts]))


def test_export_from_tfds(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  out = tmp_path / "mnist.npz"
  with tfds.testing.mock_data(num_examples=12):
    arrays = export.export("mnist", str(out), download=False)
  images, labels = read_back(out, "train")
  assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(images, arrays["x_train"])
  np.testing.assert_array_equal(labels, arrays["y_train"])
