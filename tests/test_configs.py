"""Every shipped config loads, validates and selects what it promises."""

import zipfile

import numpy as np
import pytest

from simvae_jax import aot, configs, methods, train
from simvae_jax.data import sources

from conftest import SHARED_DATASETS, load_repo_config


@pytest.mark.parametrize("name", configs.names())
def test_config_is_valid(name):
  config = load_repo_config(name)
  train.validate_config(config)
  assert config.method == "simvae"
  # Every dataset states its facts: a name for reports, the paper's numbers
  # for every registered method it reports (none for datasets it omits).
  assert config.data.display_name or name == "digits"
  table = configs.module(name).PAPER_TABLE1
  assert set(table) <= set(methods.names())
  assert all(len(cell) == 2 for cell in table.values())


def _stored_image_shapes(path) -> set:
  """The (H, W, C) of every image array in an .npz file, from the arrays'
  headers (nothing else is read)."""
  shapes = set()
  with zipfile.ZipFile(path) as archive:
    for member in archive.namelist():
      if member.startswith("x_"):
        with archive.open(member) as file:
          major, _ = np.lib.format.read_magic(file)
          read_header = (
              np.lib.format.read_array_header_1_0
              if major == 1
              else np.lib.format.read_array_header_2_0
          )
          stored = read_header(file)[0]
          shapes.add(tuple(stored[1:]) + (1,) * (len(stored) == 3))
  return shapes


@pytest.mark.parametrize("name", configs.names())
def test_the_config_states_the_shape_of_its_images(name):
  """The shape sizing reads without data (``aot.image_shape_of``) is the
  stored data's, where it is here (digits; ../shared's .npz files)."""
  config = load_repo_config(name)
  shape = aot.image_shape_of(config)
  if name == "digits":
    assert sources.load_source(config.data, "train").image_shape == shape
  files = [SHARED_DATASETS / f for f in config.data.offline_files]
  for path in filter(lambda path: path.exists(), files):
    assert _stored_image_shapes(path) == {shape}, path


def test_the_package_finds_every_config_the_command_line_reads():
  assert configs.names() == (
      "celeba",
      "cifar10",
      "digits",
      "fashion_mnist",
      "mnist",
      "stl10",
  )
  with pytest.raises(ValueError, match="Unknown dataset 'imagenet'"):
    configs.load("imagenet")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_like_configs_follow_the_spec(name):
  paper = load_repo_config(name)
  assert (paper.batch_size, paper.num_views) == (64, 10)
  assert paper.data.name == name
  assert (paper.model.encoder, paper.model.decoder) == ("mlp", "mlp")
  assert tuple(paper.model.encoders.mlp.hidden_sizes) == (2000, 500, 500)
  assert tuple(paper.model.decoders.mlp.hidden_sizes) == (500, 500, 2000)
  assert paper.model.latent_dim == 10
  assert tuple(paper.augment.crop_scale) == (0.4, 1.0)
  assert (paper.optimizer.learning_rate, paper.optimizer.eps) == (8e-5, 1e-4)
  authors = load_repo_config(name, "authors")
  assert (authors.batch_size, authors.num_views) == (64, 2)
  assert authors.likelihood.name == "bernoulli" and authors.augment.binarize
  assert authors.augment.flip == "vertical"


def test_unknown_variant_is_rejected():
  with pytest.raises(ValueError, match="authors"):
    load_repo_config("mnist", "fast")


def test_quick_variant_is_the_paper_setting_with_a_short_fast_schedule():
  paper, quick = load_repo_config("mnist"), load_repo_config("mnist", "quick")
  assert (quick.num_views, quick.batch_size) == (
      paper.num_views,
      paper.batch_size,
  )
  assert quick.num_epochs < paper.num_epochs
  assert quick.optimizer.learning_rate > paper.optimizer.learning_rate


def test_variants_compose():
  """``quick,encoder=resnet18``: the quick schedule with the ResNet-18
  encoder (the exclusive names could not say it); flags and the keyword in
  any order; a wrong part is one error naming the choices."""
  quick = load_repo_config("cifar10", "quick")
  both = load_repo_config("cifar10", "quick,encoder=resnet18")
  assert both.model.encoder == "resnet18"
  assert both.to_dict() == dict(
      quick.to_dict(), model=dict(quick.model.to_dict(), encoder="resnet18")
  )
  assert load_repo_config("cifar10", "encoder=resnet18,quick") == both
  authors_quick = load_repo_config("mnist", "authors,quick")
  assert authors_quick.num_views == 2 and authors_quick.augment.binarize
  assert (
      authors_quick.num_epochs == load_repo_config("mnist", "quick").num_epochs
  )
  assert load_repo_config("celeba", "quick,authors").data.train_subset == 20000
  for wrong in ("quick,encoder=vgg", "quick,fast", "quick,views=2"):
    with pytest.raises(ValueError, match="encoder=NAME") as error:
      load_repo_config("cifar10", wrong)
    assert wrong.split(",")[1] in str(error.value)


def test_cifar10_config_is_the_paper_setting():
  paper = load_repo_config("cifar10")
  assert (paper.batch_size, paper.num_views, paper.num_epochs) == (64, 10, 400)
  assert (paper.model.encoder, paper.model.decoder) == (
      "resnet_authors",
      "resnet_authors",
  )
  assert paper.model.latent_dim == 64
  augment = paper.augment
  assert (
      tuple(augment.crop_scale) == (0.6, 1.0) and augment.flip == "horizontal"
  )
  assert tuple(augment.color_jitter) == (0.8, 0.8, 0.8, 0.2)
  assert (augment.color_jitter_prob, augment.grayscale_prob) == (0.8, 0.2)
  likelihood = paper.likelihood
  assert (likelihood.name, likelihood.log_variance, likelihood.mean_link) == (
      "gaussian",
      -4.6,
      "sigmoid",
  )
  assert paper.simvae.prior_variance == 0.15
  assert (paper.optimizer.name, paper.optimizer.learning_rate) == ("adam", 8e-5)
  assert paper.optimizer.eps == 1e-4


def test_cifar10_variants():
  authors = load_repo_config("cifar10", "authors")
  assert authors.num_views == 2 and authors.augment.flip == "vertical"
  assert (
      authors.augment.color_jitter_prob,
      authors.augment.grayscale_prob,
  ) == (
      1.0,
      0.0,
  )
  assert load_repo_config("cifar10", "resnet18").model.encoder == "resnet18"
  paper, quick = load_repo_config("cifar10"), load_repo_config(
      "cifar10", "quick"
  )
  assert quick.num_epochs < paper.num_epochs
  assert quick.model.encoder == paper.model.encoder
  with pytest.raises(ValueError, match="quick"):
    load_repo_config("cifar10", "imagenet")
