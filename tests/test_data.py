"""Host pipeline: sources, deterministic shuffling, epochs, slicing, position."""

import ml_collections
import numpy as np
import pytest

from simvae_jax.data import pipeline, sources

from conftest import shared_dataset


def make_source(num=50, shape=(4, 4, 1)):
  images = np.arange(num, dtype=np.uint8)[:, None, None, None] * np.ones(shape, np.uint8)
  return sources.ArraySource(images, np.arange(num, dtype=np.int32))


def labels_of(dataset, count):
  iterator = pipeline.make_train_iterator(dataset)
  return [next(iterator)["label"] for _ in range(count)]


def test_batches_are_uint8_images_and_labels():
  batch = next(pipeline.make_train_iterator(
      pipeline.make_train_dataset(make_source(), 8, seed=0)))
  assert batch["image"].dtype == np.uint8 and batch["image"].shape == (8, 4, 4, 1)
  assert batch["label"].shape == (8,)
  # Image and label stay paired through shuffling.
  np.testing.assert_array_equal(batch["image"][:, 0, 0, 0], batch["label"])


def test_shuffle_is_deterministic_in_seed():
  first = labels_of(pipeline.make_train_dataset(make_source(), 8, seed=3), 12)
  again = labels_of(pipeline.make_train_dataset(make_source(), 8, seed=3), 12)
  other = labels_of(pipeline.make_train_dataset(make_source(), 8, seed=4), 12)
  np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
  assert not np.array_equal(np.concatenate(first), np.concatenate(other))


def test_each_epoch_is_a_new_permutation_with_remainder_dropped():
  dataset = pipeline.make_train_dataset(make_source(50), 8, seed=0, num_epochs=3)
  batches = labels_of(dataset, 18)        # 50 // 8 = 6 full batches per epoch
  with pytest.raises(StopIteration):
    iterator = pipeline.make_train_iterator(dataset)
    for _ in range(19):
      next(iterator)
  epochs = [np.concatenate(batches[6 * e:6 * (e + 1)]) for e in range(3)]
  for epoch in epochs:
    assert len(set(epoch.tolist())) == 48     # no repeats within an epoch
  assert not np.array_equal(epochs[0], epochs[1])


def test_process_slices_are_disjoint_and_cover_the_data():
  source = make_source(48)
  seen = []
  for index in range(2):
    dataset = pipeline.make_train_dataset(source, 16, seed=0, num_epochs=1,
                                          process_index=index, process_count=2)
    labels = np.concatenate(labels_of(dataset, 3))
    assert labels.shape == (24,)            # local batch 8, 3 batches
    seen.append(set(labels.tolist()))
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(range(48))


def test_uneven_process_split_is_an_error():
  with pytest.raises(ValueError, match="not divisible"):
    pipeline.make_train_dataset(make_source(), 9, seed=0, process_index=0,
                                process_count=2)


def test_position_can_be_saved_and_restored():
  dataset = pipeline.make_train_dataset(make_source(), 8, seed=0)
  iterator = pipeline.make_train_iterator(dataset)
  for _ in range(7):
    next(iterator)
  state = iterator.get_state()
  expected = [next(iterator)["label"] for _ in range(5)]
  restored = pipeline.make_train_iterator(dataset)
  restored.set_state(state)
  for want in expected:
    np.testing.assert_array_equal(next(restored)["label"], want)


def test_digits_source_is_split_deterministically():
  config = ml_collections.ConfigDict(dict(source="digits"))
  train, test = sources.load_source(config, "train"), sources.load_source(config, "test")
  assert len(train) + len(test) == 1797
  assert train[0]["image"].shape == (8, 8, 1) and train[0]["image"].dtype == np.uint8
  assert train[0]["image"].max() > 200    # rescaled from 0..16 to 0..255
  again = sources.load_source(config, "train")
  np.testing.assert_array_equal(train.images, again.images)


def test_npz_source(tmp_path):
  path = tmp_path / "toy.npz"
  rng = np.random.default_rng(0)
  np.savez(path, x_train=rng.integers(0, 255, (10, 6, 6), dtype=np.uint8),
           y_train=np.arange(10), x_test=rng.integers(0, 255, (4, 6, 6), dtype=np.uint8),
           y_test=np.arange(4))
  config = ml_collections.ConfigDict(dict(source="npz", path=str(path)))
  test = sources.load_source(config, "test")
  assert len(test) == 4 and test[1]["image"].shape == (6, 6, 1)


def test_npz_source_errors(tmp_path):
  path = tmp_path / "bad.npz"
  np.savez(path, x_train=np.zeros((2, 3, 3), np.uint8))
  with pytest.raises(ValueError, match="lacks"):
    sources.load_source(ml_collections.ConfigDict(dict(source="npz", path=str(path))),
                        "train")
  with pytest.raises(ValueError, match="data.path"):
    sources.load_source(ml_collections.ConfigDict(dict(source="npz", path="")), "train")
  with pytest.raises(ValueError, match="digits"):
    sources.load_source(ml_collections.ConfigDict(dict(source="web")), "train")


def test_real_mnist_npz():
  config = ml_collections.ConfigDict(dict(source="npz",
                                          path=shared_dataset("mnist.npz")))
  train = sources.load_source(config, "train")
  assert len(train) == 60000 and train[0]["image"].shape == (28, 28, 1)


def test_tfds_source_reads_through_data_source():
  tfds = pytest.importorskip("tensorflow_datasets")
  config = ml_collections.ConfigDict(dict(source="tfds", name="mnist", data_dir="",
                                          download=False))
  with tfds.testing.mock_data(num_examples=20):
    source = sources.load_source(config, "train")
    record = source[3]
    assert len(source) == 20
    assert record["image"].shape == (28, 28, 1) and record["image"].dtype == np.uint8
    batch = next(pipeline.make_train_iterator(
        pipeline.make_train_dataset(source, 4, seed=0)))
    assert batch["image"].shape == (4, 28, 28, 1)


def test_tfds_rejects_unknown_dataset():
  config = ml_collections.ConfigDict(dict(source="tfds", name="imagenet2012",
                                          data_dir="", download=False))
  with pytest.raises(ValueError, match="celeb_a"):
    sources.load_source(config, "train")
