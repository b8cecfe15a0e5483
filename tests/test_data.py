"""Host pipeline: deterministic shuffling, epochs, batch reads, process
slices, the saved position."""

import grain
import numpy as np
import pytest

from simvae_jax.data import order, pipeline, sources


def make_source(num=50, shape=(4, 4, 1)):
  images = np.arange(num, dtype=np.uint8)[:, None, None, None] * np.ones(
      shape, np.uint8
  )
  return sources.ArraySource(images, np.arange(num, dtype=np.int32))


def labels_of(dataset, count):
  iterator = pipeline.make_train_iterator(dataset)
  return [next(iterator)["label"] for _ in range(count)]


def grain_record_pipeline(source, global_batch, seed, index, count):
  """The pipeline as it was: grain reading, shuffling and batching records
  one by one (the reference for the order of the batch-level reads)."""
  batch = global_batch // count
  batches = (
      grain.MapDataset.source(source)
      .shuffle(seed=seed)
      .batch(batch, drop_remainder=True)
  )
  mine = batches[: len(source) // global_batch * count]
  return iter(mine[index::count].repeat(None).to_iter_dataset())


@pytest.mark.parametrize("num", [50, 61, 300])
def test_epoch_permutations_are_grains_shuffle(num):
  for seed, epoch in [(0, 0), (3, 2), (2**32 - 1, 1)]:
    expected = [
        grain.experimental.index_shuffle(
            i, max_index=num - 1, seed=(seed + epoch) % 2**32, rounds=4
        )
        for i in range(num)
    ]
    np.testing.assert_array_equal(
        order.epoch_permutation(num, seed, epoch), expected
    )


@pytest.mark.parametrize("process_count", [1, 2])
def test_batch_reads_keep_the_order_of_record_reads(process_count):
  """Batches read with one gather each are the batches grain built record by
  record, over several epochs and for each process's slice."""
  source = make_source(num=61)
  for index in range(process_count):
    ours = pipeline.make_train_iterator(
        pipeline.make_train_dataset(
            source, 8, seed=5, process_index=index, process_count=process_count
        )
    )
    reference = grain_record_pipeline(source, 8, 5, index, process_count)
    for _ in range(3 * (61 // 8)):
      got, want = next(ours), next(reference)
      np.testing.assert_array_equal(got["image"], want["image"])
      np.testing.assert_array_equal(got["label"], want["label"])


def test_batches_are_uint8_images_and_labels():
  batch = next(
      pipeline.make_train_iterator(
          pipeline.make_train_dataset(make_source(), 8, seed=0)
      )
  )
  assert batch["image"].dtype == np.uint8 and batch["image"].shape == (
      8,
      4,
      4,
      1,
  )
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
  dataset = pipeline.make_train_dataset(
      make_source(50), 8, seed=0, num_epochs=3
  )
  batches = labels_of(dataset, 18)  # 50 // 8 = 6 full batches per epoch
  with pytest.raises(StopIteration):
    iterator = pipeline.make_train_iterator(dataset)
    for _ in range(19):
      next(iterator)
  epochs = [np.concatenate(batches[6 * e : 6 * (e + 1)]) for e in range(3)]
  for epoch in epochs:
    assert len(set(epoch.tolist())) == 48  # no repeats within an epoch
  assert not np.array_equal(epochs[0], epochs[1])


def test_process_slices_are_disjoint_and_cover_the_data():
  source = make_source(48)
  seen = []
  for index in range(2):
    dataset = pipeline.make_train_dataset(
        source, 16, seed=0, num_epochs=1, process_index=index, process_count=2
    )
    labels = np.concatenate(labels_of(dataset, 3))
    assert labels.shape == (24,)  # local batch 8, 3 batches
    seen.append(set(labels.tolist()))
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(range(48))


@pytest.mark.slow
def test_global_batches_do_not_depend_on_the_process_count():
  source = make_source(50)
  one = labels_of(pipeline.make_train_dataset(source, 8, seed=3), 18)
  parts = [
      labels_of(
          pipeline.make_train_dataset(
              source, 8, seed=3, process_index=index, process_count=count
          ),
          18,
      )
      for count in (2, 4)
      for index in range(count)
  ]
  two = [np.concatenate(batches) for batches in zip(*parts[:2])]
  four = [np.concatenate(batches) for batches in zip(*parts[2:])]
  for global_batch, *others in zip(one, two, four):
    for other in others:
      np.testing.assert_array_equal(global_batch, other)


def test_uneven_process_split_is_an_error():
  with pytest.raises(ValueError, match="not divisible"):
    pipeline.make_train_dataset(
        make_source(), 9, seed=0, process_index=0, process_count=2
    )


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
