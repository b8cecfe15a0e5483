"""Style tasks with known answers (evaluation/style.py): the transformations
against NumPy, their classes, that raw pixels solve them and a constant
representation does not, and their place in a run's eval.json."""

import json

import numpy as np
import pytest

from simvae_jax import train
from simvae_jax.data import sources
from simvae_jax.evaluation import context, representations, style, suite
from simvae_jax.evaluation.common import Stopwatch
from simvae_jax.experiment import Experiment

from conftest import tiny_digits_config

TASKS = {task.name: task for task in style.STYLE_TASKS}


def digits(split):
  return sources.read_all(sources.load_source(tiny_digits_config().data, split))


def random_images(count=6, size=8, channels=3, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (count, size, size, channels), dtype=np.uint8)


def test_flips_and_rotations_equal_numpy():
  images = random_images()
  for name, reference in [
      ("hflip", lambda x: x[:, ::-1]),
      ("vflip", lambda x: x[::-1]),
  ]:
    classes = np.array([0, 1, 1, 0, 1, 0])
    out = style.transform_images(TASKS[name], images, classes)
    for image, cls, result in zip(images, classes, out):
      np.testing.assert_array_equal(result, reference(image) if cls else image)
  classes = np.array([0, 1, 2, 3, 1, 2])
  out = style.transform_images(TASKS["rotation"], images, classes)
  for image, cls, result in zip(images, classes, out):
    np.testing.assert_array_equal(result, np.rot90(image, cls))


def test_crop_position_zooms_the_chosen_quadrant():
  # Each quadrant of a 16x16 image is one colour: the zoomed quadrant q is
  # that colour everywhere but on the outer row and column next to the other
  # quadrants (bilinear sampling reads a quarter pixel beyond the crop there).
  colours = np.array([[10, 20, 30], [200, 40, 60], [70, 250, 90], [5, 5, 240]])
  image = np.zeros((16, 16, 3), np.uint8)
  for (row, col), colour in zip(style.QUADRANTS, colours):
    image[row * 8 : row * 8 + 8, col * 8 : col * 8 + 8] = colour
  images = np.repeat(image[None], 4, axis=0)
  out = style.transform_images(TASKS["crop_position"], images, np.arange(4))
  for quadrant, result in enumerate(out):
    np.testing.assert_array_equal(
        result[1:15, 1:15], np.broadcast_to(colours[quadrant], (14, 14, 3))
    )


def test_crop_scale_one_is_the_identity_and_smaller_scales_zoom_the_centre():
  images = random_images(count=2, size=16)
  out = style.transform_images(TASKS["crop_scale"], images, np.zeros(2, int))
  np.testing.assert_array_equal(out, images)
  # A centred square of one colour fills the image at scale 1/2 (but the
  # border rows and columns, which sample a quarter pixel outside it).
  image = np.zeros((1, 16, 16, 3), np.uint8)
  image[0, 4:12, 4:12] = (120, 60, 30)
  half = style.CROP_SCALES.index(0.5)
  out = style.transform_images(TASKS["crop_scale"], image, np.array([half]))
  np.testing.assert_array_equal(
      out[0, 1:15, 1:15], np.broadcast_to((120, 60, 30), (14, 14, 3))
  )


def test_hue_and_grayscale():
  images = random_images()
  zero = np.zeros(len(images), int)
  np.testing.assert_array_equal(
      style.transform_images(TASKS["hue"], images, zero), images
  )
  # Pure red shifted by half the hue circle is cyan.
  red = np.zeros((1, 4, 4, 3), np.uint8)
  red[..., 0] = 255
  half = style.HUE_SHIFTS.index(0.5)
  cyan = style.transform_images(TASKS["hue"], red, np.array([half]))
  np.testing.assert_array_equal(cyan[0, 0, 0], (0, 255, 255))
  gray = style.transform_images(TASKS["grayscale"], images, np.ones(6, int))
  luminance = images.astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140])
  np.testing.assert_allclose(gray[..., 0], luminance, atol=1)
  np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
  assert [t.name for t in style.style_tasks(1)] == [
      "hflip",
      "vflip",
      "rotation",
      "crop_position",
      "crop_scale",
  ]
  assert len(style.style_tasks(3)) == 7


def test_classes_are_uniform_and_deterministic_in_the_seed():
  task = TASKS["rotation"]
  first = style.draw_classes(task, 4000, seed=0, split="train")
  np.testing.assert_array_equal(
      first, style.draw_classes(task, 4000, seed=0, split="train")
  )
  assert not np.array_equal(
      first, style.draw_classes(task, 4000, seed=1, split="train")
  )
  assert not np.array_equal(
      first, style.draw_classes(task, 4000, seed=0, split="test")
  )
  counts = np.bincount(first, minlength=4)
  # Each of 4 classes: 1000 expected, binomial s.d. about 27.
  assert np.all(np.abs(counts - 1000) < 5 * 27), counts


def pixel_scores(name, representation=lambda x: x.reshape(len(x), -1)):
  """Scores of a style task on digits with a fixed representation."""
  task = TASKS[name]
  data = {}
  for split in ("train", "test"):
    images, _ = digits(split)
    classes = style.draw_classes(task, len(images), 0, split)
    transformed = style.transform_images(task, images, classes)
    data[split] = representation(transformed.astype(np.float32) / 255), classes
  config = tiny_digits_config().eval
  config.probe_epochs, config.probe_learning_rate = 60, 3e-3
  task_data = (*data["train"], *data["test"])
  return suite.evaluate(task_data, {name: task_data}, config, seed=0)[1][name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hflip", "vflip", "rotation"])
def test_raw_pixels_solve_flips_and_rotations(name):
  scores = pixel_scores(name)
  chance = 1 / TASKS[name].num_classes
  # Far above chance; not perfect, since some digits (0, 1, 8) look much the
  # same flipped.
  assert scores["mlp_probe_acc"] > chance + 0.35, scores
  assert scores["knn_acc"] > chance + 0.35, scores


# Every point is the same, so scikit-learn's mixture (on so few points) finds
# one distinct cluster and says so; that is this test's premise.
@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
def test_a_constant_representation_scores_chance():
  scores = pixel_scores("rotation", lambda x: np.ones((len(x), 4), np.float32))
  # 360 test digits, 4 classes: chance 1/4 with s.e. about 0.023.
  assert abs(scores["mlp_probe_acc"] - 0.25) < 0.08, scores
  assert abs(scores["knn_acc"] - 0.25) < 0.08, scores
  assert abs(scores["majority_acc"] - 0.25) < 0.08, scores


@pytest.mark.slow
def test_style_tasks_in_a_run(workdir):
  config = tiny_digits_config()
  config.eval.tasks = ("style",)
  config.eval.compare_untrained = False
  config.eval.probe_epochs = 5
  config.eval.style_max_examples = 300
  train.train_and_evaluate(config, workdir)
  with open(f"{workdir}/eval.json") as file:
    results = json.load(file)["tasks"]
  names = [f"style/{t.name}" for t in style.style_tasks(1)]
  assert set(results) == {*names, "style_mean"}
  for name in names:
    assert results[name]["num_train"] == 300
    assert results[name]["num_test"] == 300
  mean = np.mean([results[n]["mlp_probe_acc"] for n in names])
  assert results["style_mean"]["mlp_probe_acc"] == pytest.approx(mean)


def test_unchanged_images_reuse_their_content_representations(monkeypatch):
  """Style representations with the reuse equal the encoder's on every
  transformed image, and the encoder sees only the changed ones."""
  config = tiny_digits_config()
  config.eval.style_max_examples = 200
  experiment = Experiment.from_config(config)
  state = experiment.initial_state()
  data = context.EvalData.from_experiment(experiment)
  now = context.Context(
      experiment,
      data,
      None,
      state.params,
      state.model_state,
      0,
      False,
      False,
      Stopwatch(),
  )
  tasks = [TASKS["hflip"], TASKS["rotation"], TASKS["crop_position"]]
  encoded = []
  compute = representations.compute_representations

  def spy(method, params, model_state, images, *args):
    encoded.append(len(images))
    return compute(method, params, model_state, images, *args)

  content = now.representations
  monkeypatch.setattr(representations, "compute_representations", spy)
  reused = now.style_representations(tasks)
  monkeypatch.undo()
  originals = {
      "train": sources.read_all(data.probe, 200)[0],
      "test": sources.read_all(data.test, 200)[0],
  }
  assert content[0].shape[0] > 200
  changed = []
  for task in tasks:
    train_repr, train_classes, test_repr, test_classes = reused[
        f"style/{task.name}"
    ]
    for split, got, classes in [
        ("train", train_repr, train_classes),
        ("test", test_repr, test_classes),
    ]:
      transformed = style.transform_images(task, originals[split], classes)
      changed.append(
          int(np.sum(np.any(transformed != originals[split], (1, 2, 3))))
      )
      expected = now.map(compute, transformed)
      np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  # Only the changed images are encoded: class 0 of a flip or a rotation
  # keeps its image; every quadrant crop changes its image.
  assert encoded == changed
  assert max(encoded[:4]) < 170 and encoded[4:] == [200, 200]
