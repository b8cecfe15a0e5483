"""CelebA: the folder source, the attribute tasks, streaming evaluation, tfds
celeb_a, and configs/celeba.py end to end (synthetic images: CelebA's own are
not on these machines; its attribute file is)."""

import json
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
from PIL import Image

from simvae_jax.data import celeba, sources
from simvae_jax.evaluation import representations, suite, tasks

from conftest import REPO, load_repo_config, shared_dataset, tiny_digits_config

FILLERS = [f"Filler_{i}" for i in range(40)]
NAMES = list(
    dict.fromkeys(
        list(tasks.CELEBA_ATTRIBUTES) + list(tasks.HAIR_COLOURS) + FILLERS
    )
)[:40]


def write_folder(root, num_train=36, num_test=12, seed=0):
  """A CelebA folder in the standard layout: 178x218 JPEGs whose colour
  follows the Male attribute, random other attributes, one hair colour."""
  rng = np.random.default_rng(seed)
  (root / "img_align_celeba").mkdir(parents=True)
  count = num_train + num_test
  values = rng.integers(0, 2, (count, 40)) * 2 - 1
  hair = [NAMES.index(h) for h in tasks.HAIR_COLOURS]
  values[:, hair] = -1
  values[np.arange(count), np.asarray(hair)[rng.integers(0, 4, count)]] = 1
  male = NAMES.index("Male")
  attr_lines, partition_lines = [str(count), " ".join(NAMES)], []
  for i in range(count):
    name = f"{i + 1:06d}.jpg"
    colour = (200, 60, 60) if values[i, male] > 0 else (60, 60, 200)
    image = np.clip(
        np.asarray(colour) + rng.normal(0, 20, (218, 178, 3)), 0, 255
    )
    Image.fromarray(image.astype(np.uint8)).save(
        root / "img_align_celeba" / name
    )
    attr_lines.append(name + " " + " ".join(f"{v:2d}" for v in values[i]))
    partition_lines.append(f"{name} {0 if i < num_train else 2}")
  (root / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
  (root / "list_eval_partition.txt").write_text(
      "\n".join(partition_lines) + "\n"
  )
  return values


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  root = tmp_path_factory.mktemp("celeba")
  values = write_folder(root)
  return root, values


def folder_config(root, **overrides):
  settings = dict(
      source="celeba_folder",
      path=str(root),
      center_crop=140,
      image_size=64,
      cache_dir="",
      decode_workers=1,
  )
  return ml_collections.ConfigDict({**settings, **overrides})


def test_folder_source_splits_crops_and_labels(folder):
  root, values = folder
  train = celeba.load(folder_config(root), "train")
  test = celeba.load(folder_config(root), "test")
  assert (len(train), len(test)) == (36, 12)
  record = test[3]
  assert (
      record["image"].shape == (64, 64, 3) and record["image"].dtype == np.uint8
  )
  male = NAMES.index("Male")
  assert record["label"] == int(values[36 + 3, male] > 0)
  targets = sources.targets(test)
  np.testing.assert_array_equal(targets["attributes"], values[36:] > 0)
  np.testing.assert_array_equal(targets["label"], values[36:, male] > 0)
  assert test.attribute_names == tuple(NAMES)


def test_center_crop_and_resize():
  image = np.zeros((218, 178, 3), np.uint8)
  image[109 - 10 : 109 + 10, 89 - 10 : 89 + 10] = 255  # a centred square
  out = celeba.center_crop_and_resize(image, 140, 64)
  assert out.shape == (64, 64, 3)
  assert out[32, 32].min() > 200 and out[2, 2].max() < 20
  assert celeba.center_crop_and_resize(image, 0, 0).shape == (218, 178, 3)
  with pytest.raises(ValueError, match="exceeds"):
    celeba.center_crop_and_resize(image, 200, 64)


def test_missing_folder_files_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="not a folder"):
    celeba.load(folder_config(tmp_path / "nope"), "train")
  with pytest.raises(ValueError, match="list_attr_celeba.txt"):
    celeba.load(folder_config(tmp_path), "train")


@pytest.mark.slow
def test_the_folder_is_decoded_once_into_a_cache_with_its_provenance(
    tmp_path, capsys
):
  """Two worker processes decode the folder into a memory-mapped cache equal
  to decoding each image directly; later loads read the cache (the JPEGs can
  be gone); a changed resolution gets its own cache; a cache whose recorded
  provenance differs, or a build that never finished, is not trusted."""
  root = tmp_path / "celeba"
  root.mkdir()
  write_folder(root, num_train=600, num_test=4)
  config = folder_config(root, decode_workers=2)
  built = celeba.load(config, "train")
  assert isinstance(built.images, np.memmap) and len(built) == 600
  for index in (0, 257, 599):
    name = built_filenames(root)[index]
    np.testing.assert_array_equal(
        built.images[index], celeba._decode(str(root), name, 140, 64)
    )
  cache = root / "simvae_cache" / "celeba_train_crop140_size64"
  record = json.loads(cache.with_suffix(".json").read_text())
  assert record["split"] == "train" and record["image_size"] == 64
  assert "Building" in capsys.readouterr().out

  images = root / "img_align_celeba"
  images.rename(root / "moved")  # the cache alone serves the split now
  again = celeba.load(config, "train")
  np.testing.assert_array_equal(again.images, built.images)
  assert "Building" not in capsys.readouterr().out
  with pytest.raises(FileNotFoundError):  # another resolution: a new cache
    celeba.load(folder_config(root, image_size=32), "train")
  (root / "moved").rename(images)

  record["center_crop"] = 120  # as if written by another setting
  cache.with_suffix(".json").write_text(json.dumps(record))
  celeba.load(config, "train")
  assert "its center_crop changed" in capsys.readouterr().out

  cache.with_suffix(".json").unlink()  # killed after the rename, before it
  leftover = root / "simvae_cache" / f"{cache.name}.npy.tmp-999999999"
  leftover.write_bytes(b"half an array")  # from a killed build
  celeba.load(config, "train")
  assert "no complete cache yet" in capsys.readouterr().out
  assert not leftover.exists()
  assert json.loads(cache.with_suffix(".json").read_text()) == {
      **record,
      "center_crop": 140,
  }


def built_filenames(root):
  filenames, _, _, partitions = celeba.read_annotations(str(root))
  return filenames[partitions == celeba.SPLIT_PARTITIONS["train"]]


def test_pinned_attributes_follow_the_documented_rule():
  """The 20 least imbalanced attributes on the official training split."""
  with np.load(shared_dataset("celeba/celeba_attrs.npz")) as data:
    train = data["partition"] == 0
    chosen = tasks.least_imbalanced(
        data["attr"][train] > 0, list(data["attr_names"])
    )
    assert train.sum() == 162_770
  assert chosen == tasks.CELEBA_ATTRIBUTES


def test_hair_colour_task_uses_images_with_exactly_one_colour():
  names = list(tasks.HAIR_COLOURS) + ["Male"]
  attributes = np.array(
      [
          [1, 0, 0, 0, 1],
          [0, 0, 1, 0, 0],
          [1, 1, 0, 0, 0],
          [0, 0, 0, 0, 1],
          [0, 0, 0, 1, 0],
      ]
  )
  (task,) = tasks.make_tasks(["celeba_hair"])
  mask, classes = task.select({"attributes": attributes}, names)
  np.testing.assert_array_equal(mask, [True, True, False, False, True])
  np.testing.assert_array_equal(classes[mask], [0, 2, 3])


@pytest.mark.slow
def test_tasks_score_probes_knn_and_majority(folder):
  rng = np.random.default_rng(0)
  attributes = rng.integers(0, 2, (300, len(NAMES)))
  hair = [NAMES.index(h) for h in tasks.HAIR_COLOURS]
  attributes[:, hair] = np.eye(4, dtype=int)[rng.integers(0, 4, 300)]
  representation = attributes * 3.0 + rng.normal(0, 0.3, attributes.shape)
  targets = {"label": attributes[:, 0], "attributes": attributes}
  config = tiny_digits_config().eval
  config.probe_epochs, config.probe_learning_rate = 30, 1e-2
  selected = tasks.select(
      tasks.make_tasks(["celeba_hair", "celeba_attributes"]),
      representation[:200],
      {k: v[:200] for k, v in targets.items()},
      representation[200:],
      {k: v[200:] for k, v in targets.items()},
      NAMES,
  )
  content = (representation[:200], targets["label"][:200])
  content += (representation[200:], targets["label"][200:])
  _, results = suite.evaluate(content, selected, config, seed=0)
  assert set(results) == {
      "hair_colour",
      "attributes_mean",
      *(f"attribute/{n}" for n in tasks.CELEBA_ATTRIBUTES),
  }
  hair = results["hair_colour"]
  assert hair["mlp_probe_acc"] > 0.9 and hair["majority_acc"] < 0.5
  assert hair["knn_acc"] > 1.5 * hair["majority_acc"]
  mean = results["attributes_mean"]
  # Every attribute is a coordinate of the representation: both scorers are
  # far above the majority baseline (about 1/2 for random binary attributes).
  assert 0.4 < mean["majority_acc"] < 0.65
  assert mean["mlp_probe_acc"] > mean["majority_acc"] + 0.25
  assert mean["knn_acc"] > mean["majority_acc"] + 0.15
  with pytest.raises(ValueError, match="celeba_hair"):
    tasks.make_tasks(["celeba_hairs"])


class CountingSource(sources.Source):
  """A source that records which images each batch read asks for."""

  def __init__(self, images):
    self.images, self.reads = images, []

  def __len__(self):
    return len(self.images)

  def read(self, indices):
    self.reads.append(list(indices))
    return {"image": self.images[indices], "label": np.zeros(len(indices))}

  def targets(self):
    return {"label": np.zeros(len(self.images), np.int32)}


def test_representations_stream_a_source_batch_by_batch():
  config = tiny_digits_config()
  from simvae_jax import methods  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel

  method = methods.make_method(config, (8, 8, 1))
  params, state = method.init(jax.random.PRNGKey(0), (8, 8, 1))
  images = np.random.default_rng(0).integers(0, 256, (50, 8, 8, 1), np.uint8)
  source = CountingSource(images)
  streamed = representations.compute_representations(
      method, params, state, source, False, batch_size=16
  )
  in_memory = representations.compute_representations(
      method, params, state, images, False, batch_size=16
  )
  np.testing.assert_allclose(streamed, in_memory, rtol=1e-6)
  # Each image read once, a batch per read.
  assert source.reads == [
      list(range(s, min(s + 16, 50))) for s in range(0, 50, 16)
  ]


def test_tfds_celeb_a_is_cropped_resized_and_has_attributes():
  tfds = pytest.importorskip("tensorflow_datasets")
  config = load_repo_config("celeba").data  # tfds celeb_a, 140 -> 64 px
  config.download = False
  with tfds.testing.mock_data(num_examples=6):
    source = sources.load_source(config, "test")
    assert source[0]["image"].shape == (64, 64, 3)
    names = source.attribute_names
    assert len(names) == 40 and "Male" in names and "Blond_Hair" in names
    targets = sources.targets(source)
  assert targets["attributes"].shape == (6, 40)
  np.testing.assert_array_equal(
      targets["label"], targets["attributes"][:, names.index("Male")]
  )


@pytest.mark.slow
def test_celeba_config_end_to_end_on_a_folder(folder, tmp_path):
  root, _ = folder
  workdir = tmp_path / "run"
  completed = subprocess.run(
      [
          sys.executable,
          "-m",
          "simvae_jax.main",
          "--config=configs/celeba.py:quick",
          f"--workdir={workdir}",
          "--config.data.source=celeba_folder",
          f"--config.data.path={root}",
          "--config.data.train_subset=0",
          "--config.num_steps=2",
          "--config.batch_size=8",
          "--config.model.encoders.resnet_authors.stage_widths=(4,8,8)",
          "--config.model.encoders.resnet_authors.stem_width=8",
          "--config.model.decoders.resnet_authors.widths=(8,8,8,8)",
          "--config.eval.probe_epochs=2",
          "--config.eval.knn_ks=(1,3)",
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  assert "encoder resnet_authors:" in completed.stdout
  with open(workdir / "eval.json") as file:
    results = json.load(file)
  assert 0 <= results["label"]["mlp_probe_acc"] <= 1
  task_results = results["tasks"]
  assert "hair_colour" in task_results and "attributes_mean" in task_results
  assert len([k for k in task_results if k.startswith("attribute/")]) == 20
  for name in ("mlp_probe_acc", "knn_acc", "majority_acc"):
    assert 0 <= task_results["hair_colour"][name] <= 1
  # Every attribute task read the right labels of the right splits: its
  # majority baseline (train's most frequent class, scored on test) equals
  # the one computed here from the folder's attribute file.
  _, values = folder
  for name in tasks.CELEBA_ATTRIBUTES:
    present = values[:, NAMES.index(name)] > 0
    majority = int(present[:36].sum() > (~present[:36]).sum())
    expected = np.mean(present[36:] == majority)
    result = task_results[f"attribute/{name}"]
    assert result["majority_acc"] == pytest.approx(expected), name
    assert (result["num_train"], result["num_test"]) == (36, 12)
