"""A dataset is one config file: STL-10 (configs/stl10.py) end to end on
tfds's mock data, with the standard protocol (train on ``unlabelled``, probe
on ``train``, test on ``test``)."""

import json

import pytest

from conftest import load_repo_config, tiny_digits_config

from simvae_jax import aot, train
from simvae_jax.data import tfds_cache


def tiny_stl10_config(workdir_cache: str):
  """configs/stl10.py:quick with the tests' tiny MLPs (this test is about
  the data, not the networks) and a two-step run; the data section (tfds
  stl10 and its splits) is the file's."""
  config = load_repo_config("stl10", "quick")
  config.model = tiny_digits_config().model
  config.batch_size, config.num_views, config.num_steps = 8, 2, 2
  config.data.train_subset = 0
  config.data.download = False
  config.data.cache_dir = workdir_cache
  config.compilation_cache_dir = ""
  config.eval.probe_epochs = 1
  config.eval.knn_ks = (1, 3)
  config.posthoc_decoder.num_steps = 2
  return config


@pytest.mark.slow
def test_stl10_trains_on_unlabelled_and_probes_on_train(tmp_path, monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")
  opened = []
  original = tfds_cache._open  # pylint: disable=protected-access

  def spy(name, split, *args):
    opened.append((name, split))
    return original(name, split, *args)

  monkeypatch.setattr(tfds_cache, "_open", spy)
  config = tiny_stl10_config(str(tmp_path / "cache"))
  with tfds.testing.mock_data(num_examples=40):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  # The training role read 'unlabelled' first, then the probes 'train' and
  # the evaluation 'test'; nothing else.
  assert opened[0] == ("stl10", "unlabelled")
  assert set(opened) == {
      ("stl10", "unlabelled"),
      ("stl10", "train"),
      ("stl10", "test"),
  }
  final = json.loads((tmp_path / "run" / "eval.json").read_text())
  assert final["step"] == 2
  for metric in ("mlp_probe_acc", "knn_acc", "gmm_acc", "recon_mse"):
    assert metric in final["label"], metric
  run = json.loads((tmp_path / "run" / "run.json").read_text())
  assert run["image_shape"] == [96, 96, 3] == list(aot.image_shape_of(config))
  resolved = json.loads((tmp_path / "run" / "config.json").read_text())
  assert resolved["data"]["train_split"] == "unlabelled"
  assert resolved["data"]["probe_split"] == "train"


def test_the_stl10_config_states_its_protocol():
  config = load_repo_config("stl10")
  data = config.data
  assert (data.source, data.name, data.label_key) == ("tfds", "stl10", "label")
  assert (data.train_split, data.probe_split, data.test_split) == (
      "unlabelled",
      "train",
      "test",
  )
  assert config.model.encoder == "resnet_authors"
  quick = load_repo_config("stl10", "quick,encoder=resnet18")
  assert quick.model.encoder == "resnet18" and quick.num_views == 2
