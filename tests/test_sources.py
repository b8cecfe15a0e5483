"""The data sources: digits, npz files (parts, subsets, errors, the real
files), tfds (decoded once, cached) and their labels."""

import json

import ml_collections
import numpy as np
import pytest

from simvae_jax.data import pipeline, sources

from conftest import shared_dataset


def test_digits_source_is_split_deterministically():
  config = ml_collections.ConfigDict(dict(source="digits"))
  train, test = sources.load_source(config, "train"), sources.load_source(
      config, "test"
  )
  assert len(train) + len(test) == 1797
  assert (
      train[0]["image"].shape == (8, 8, 1)
      and train[0]["image"].dtype == np.uint8
  )
  assert train[0]["image"].max() > 200  # rescaled from 0..16 to 0..255
  again = sources.load_source(config, "train")
  np.testing.assert_array_equal(train.images, again.images)


def test_npz_source(tmp_path):
  path = tmp_path / "toy.npz"
  rng = np.random.default_rng(0)
  np.savez(
      path,
      x_train=rng.integers(0, 255, (10, 6, 6), dtype=np.uint8),
      y_train=np.arange(10),
      x_test=rng.integers(0, 255, (4, 6, 6), dtype=np.uint8),
      y_test=np.arange(4),
  )
  config = ml_collections.ConfigDict(dict(source="npz", path=str(path)))
  test = sources.load_source(config, "test")
  assert len(test) == 4 and test[1]["image"].shape == (6, 6, 1)


def test_npz_source_errors(tmp_path):
  path = tmp_path / "bad.npz"
  np.savez(path, x_train=np.zeros((2, 3, 3), np.uint8))
  with pytest.raises(ValueError, match="lacks"):
    sources.load_source(
        ml_collections.ConfigDict(dict(source="npz", path=str(path))), "train"
    )
  with pytest.raises(ValueError, match="digits"):
    sources.load_source(ml_collections.ConfigDict(dict(source="web")), "train")


def test_npz_files_are_concatenated_in_order(tmp_path):
  rng = np.random.default_rng(0)
  first, second, test = (tmp_path / f"{n}.npz" for n in ("a", "b", "test"))
  np.savez(
      first, x_train=np.full((3, 4, 4, 3), 1, np.uint8), y_train=np.arange(3)
  )
  np.savez(
      second,
      x_train=np.full((2, 4, 4, 3), 2, np.uint8),
      y_train=np.arange(2) + 7,
  )
  np.savez(
      test,
      x_test=rng.integers(0, 255, (4, 4, 4, 3), dtype=np.uint8),
      y_test=np.arange(4),
  )
  paths = f"{first}, {second},{test}"
  config = ml_collections.ConfigDict(dict(source="npz", path=paths))
  train = sources.load_source(config, "train")
  np.testing.assert_array_equal(train.labels, [0, 1, 2, 7, 8])
  np.testing.assert_array_equal(train.images[:, 0, 0, 0], [1, 1, 1, 2, 2])
  assert len(sources.load_source(config, "test")) == 4


def test_train_subset_is_fixed_and_ignores_the_test_split(tmp_path):
  path = tmp_path / "toy.npz"
  np.savez(
      path,
      x_train=np.zeros((50, 2, 2), np.uint8),
      y_train=np.arange(50),
      x_test=np.zeros((9, 2, 2), np.uint8),
      y_test=np.arange(9),
  )
  config = ml_collections.ConfigDict(
      dict(source="npz", path=str(path), train_subset=20)
  )
  subset = sources.load_source(config, "train")
  assert len(subset) == 20 and len(set(subset.labels.tolist())) == 20
  np.testing.assert_array_equal(
      subset.labels, sources.load_source(config, "train").labels
  )
  assert list(subset.labels) == sorted(subset.labels)  # original order
  assert len(sources.load_source(config, "test")) == 9
  config.train_subset = 51
  with pytest.raises(ValueError, match="exceeds the 50"):
    sources.load_source(config, "train")


def _write(path, **arrays):
  np.savez(path, **arrays)
  return str(path)


NPZ_PROBLEMS = {
    "missing file": (lambda d: str(d / "nope.npz"), "No such .npz file"),
    "directory": (lambda d: str(d), "is a directory"),
    "not an npz": (
        lambda d: (d / "junk.npz").write_text("hello") and str(d / "junk.npz"),
        "Cannot read",
    ),
    "no split arrays": (
        lambda d: _write(d / "x.npz", a=np.zeros(3)),
        "No file of data.path",
    ),
    "labels missing": (
        lambda d: _write(d / "x.npz", x_train=np.zeros((2, 3, 3), np.uint8)),
        "lacks y_train",
    ),
    "float images": (
        lambda d: _write(
            d / "x.npz", x_train=np.zeros((2, 3, 3)), y_train=np.zeros(2, int)
        ),
        "must be uint8",
    ),
    "wrong rank": (
        lambda d: _write(
            d / "x.npz",
            x_train=np.zeros((2, 3), np.uint8),
            y_train=np.zeros(2, int),
        ),
        r"\[N, H, W\]",
    ),
    "empty": (
        lambda d: _write(
            d / "x.npz",
            x_train=np.zeros((0, 3, 3), np.uint8),
            y_train=np.zeros(0, int),
        ),
        "is empty",
    ),
    "negative labels": (
        lambda d: _write(
            d / "x.npz",
            x_train=np.zeros((2, 3, 3), np.uint8),
            y_train=np.array([0, -1]),
        ),
        "negative",
    ),
    "float labels": (
        lambda d: _write(
            d / "x.npz",
            x_train=np.zeros((2, 3, 3), np.uint8),
            y_train=np.array([0.5, 1.0]),
        ),
        "integer class labels",
    ),
    "length mismatch": (
        lambda d: _write(
            d / "x.npz",
            x_train=np.zeros((2, 3, 3), np.uint8),
            y_train=np.zeros(3, int),
        ),
        "2 images .* 3 labels",
    ),
    "empty path": (lambda d: "", "needs --config.data.path"),
}


@pytest.mark.parametrize("problem", sorted(NPZ_PROBLEMS))
def test_npz_problems_are_named_in_one_clear_error(tmp_path, problem):
  make_path, message = NPZ_PROBLEMS[problem]
  config = ml_collections.ConfigDict(
      dict(source="npz", path=make_path(tmp_path))
  )
  with pytest.raises(ValueError, match=message):
    sources.load_source(config, "train")


def test_npz_parts_of_different_image_sizes_are_rejected(tmp_path):
  paths = (
      _write(
          tmp_path / "a.npz",
          x_train=np.zeros((2, 3, 3), np.uint8),
          y_train=np.zeros(2, int),
      ),
      _write(
          tmp_path / "b.npz",
          x_train=np.zeros((2, 4, 4), np.uint8),
          y_train=np.zeros(2, int),
      ),
  )
  config = ml_collections.ConfigDict(dict(source="npz", path=",".join(paths)))
  with pytest.raises(ValueError, match="differ in shape"):
    sources.load_source(config, "train")


def test_real_cifar10_npz_parts():
  parts = ",".join(
      shared_dataset(name)
      for name in (
          "cifar10_train_part0.npz",
          "cifar10_train_part1.npz",
          "cifar10_test.npz",
      )
  )
  config = ml_collections.ConfigDict(dict(source="npz", path=parts))
  train, test = sources.load_source(config, "train"), sources.load_source(
      config, "test"
  )
  assert (len(train), len(test)) == (50000, 10000)
  assert train.images.shape[1:] == (32, 32, 3)
  assert sorted(set(train.labels.tolist())) == list(range(10))


def test_real_mnist_npz():
  config = ml_collections.ConfigDict(
      dict(source="npz", path=shared_dataset("mnist.npz"))
  )
  train = sources.load_source(config, "train")
  assert len(train) == 60000 and train[0]["image"].shape == (28, 28, 1)


def test_tfds_source_reads_through_data_source():
  tfds = pytest.importorskip("tensorflow_datasets")
  config = ml_collections.ConfigDict(
      dict(source="tfds", name="mnist", data_dir="", download=False)
  )
  with tfds.testing.mock_data(num_examples=20):
    source = sources.load_source(config, "train")
    record = source[3]
    assert len(source) == 20
    assert (
        record["image"].shape == (28, 28, 1)
        and record["image"].dtype == np.uint8
    )
    batch = next(
        pipeline.make_train_iterator(
            pipeline.make_train_dataset(source, 4, seed=0)
        )
    )
    assert batch["image"].shape == (4, 28, 28, 1)


def test_tfds_is_decoded_once_in_memory_or_into_a_memory_mapped_cache(
    tmp_path, capsys
):
  """Under tfds's mock data: the in-memory decode equals the records; past
  ``cache_memory_gib`` the split goes to a memory-mapped cache with its
  labels, which a second load reuses without decoding."""
  tfds = pytest.importorskip("tensorflow_datasets")
  settings = dict(
      source="tfds", name="mnist", data_dir="", download=False, cache_dir=""
  )
  with tfds.testing.mock_data(num_examples=30):
    records = tfds.data_source("mnist", split="train", download=False)
    expected = np.stack([np.asarray(records[i]["image"]) for i in range(30)])
    labels = [int(records[i]["label"]) for i in range(30)]
    in_memory = sources.load_source(
        ml_collections.ConfigDict(settings), "train"
    )
    mapped_config = ml_collections.ConfigDict(
        {**settings, "cache_memory_gib": 1e-6, "cache_dir": str(tmp_path)}
    )
    mapped = sources.load_source(mapped_config, "train")
    assert "Building" in capsys.readouterr().out
    again = sources.load_source(mapped_config, "train")
    assert "Building" not in capsys.readouterr().out
  assert isinstance(in_memory.images, np.ndarray)
  assert not isinstance(in_memory.images, np.memmap)
  assert isinstance(again.images, np.memmap)
  for source in (in_memory, mapped, again):
    np.testing.assert_array_equal(source.images, expected)
    np.testing.assert_array_equal(source.labels, labels)
  record = json.loads((tmp_path / "mnist_train_crop0_size0.json").read_text())
  assert record["source"] == "tfds" and record["split"] == "train"


def test_tfds_names_a_dataset_it_cannot_find_and_a_missing_label_key(
    tmp_path,
):
  tfds = pytest.importorskip("tensorflow_datasets")
  config = ml_collections.ConfigDict(
      dict(
          source="tfds",
          name="no_such_dataset",
          data_dir=str(tmp_path),
          download=False,
      )
  )
  with pytest.raises(ValueError, match="tfds could not find 'no_such_dataset'"):
    sources.load_source(config, "train")
  config.name, config.label_key = "mnist", "attributes/Male"
  with tfds.testing.mock_data(num_examples=4):
    with pytest.raises(ValueError, match="no feature 'attributes/Male'"):
      sources.load_source(config, "train")
