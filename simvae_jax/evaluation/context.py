"""What every evaluator reads: the splits (``EvalData``) and one
evaluation's ``Context`` (the parameters being evaluated, whether the decoder
is ready, the stopwatch, and the representations, computed once for every
evaluator that needs them)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
from etils import epath

from simvae_jax.data import augment, sources
from simvae_jax.evaluation import representations, style
from simvae_jax.evaluation.common import Stopwatch


def is_main_process() -> bool:
  return jax.process_index() == 0


@dataclasses.dataclass
class EvalData:
  """The splits an evaluation reads: the probe split (at most
  ``eval.max_train_examples``) and the test split, their targets in memory,
  their images streamed."""

  probe: object
  test: object

  @classmethod
  def from_experiment(cls, experiment) -> "EvalData":
    config = experiment.config
    limit = config.eval.max_train_examples or None
    return cls(
        sources.head(experiment.probe_source, limit),
        sources.load_source(config.data, "test"),
    )

  @functools.cached_property
  def probe_targets(self) -> dict:
    return sources.targets(self.probe)

  @functools.cached_property
  def test_targets(self) -> dict:
    return sources.targets(self.test)


@dataclasses.dataclass
class Context:
  """One evaluation of ``params`` at ``step``. ``reconstruction``: whether
  the method's decoder is ready (always for generative methods; after the
  post-hoc decoder for the others); ``monitor``: the online probe's state."""

  experiment: object
  data: EvalData
  workdir: epath.Path
  params: dict
  model_state: dict
  step: int
  final: bool
  reconstruction: bool
  timer: Stopwatch
  monitor: dict | None = None

  def map(self, fn, images):
    """``fn`` (from ``representations``) over images or a source, sharded."""
    experiment = self.experiment
    return fn(
        experiment.method,
        self.params,
        self.model_state,
        images,
        experiment.config.augment.binarize,
        experiment.mesh,
    )

  @functools.cached_property
  def representations(self) -> tuple[np.ndarray, np.ndarray]:
    """(probe split [N, D], test split [M, D]) representations."""
    with self.timer("representations"):
      represent = representations.compute_representations
      return self.map(represent, self.data.probe), self.map(
          represent, self.data.test
      )

  def style_representations(self, tasks: list) -> dict:
    """{"style/<task>": (train representations [n, D], classes [n], test
    representations, classes)} of each ``style.StyleTask``'s transformed
    images (the first ``eval.style_max_examples`` of each split); computed by
    all processes together. A transformed image equal to its original (a
    class that changes nothing: no flip, rotation 0, the full crop, ...)
    takes the original's content representation instead of a second pass of
    the encoder."""
    if not tasks:
      return {}
    config = self.experiment.config
    limit = config.eval.style_max_examples
    splits = {
        "train": sources.read_all(self.data.probe, limit)[0],
        "test": sources.read_all(self.data.test, limit)[0],
    }
    content = dict(zip(splits, self.representations))
    represented = {}
    for task in tasks:
      data = []
      for split, images in splits.items():
        classes = style.draw_classes(task, len(images), config.seed, split)
        with self.timer("style_images"):
          transformed = style.transform_images(task, images, classes)
        with self.timer("representations"):
          data += [
              self._represent_changed(
                  images, transformed, content[split][: len(images)]
              ),
              classes,
          ]
      represented[f"style/{task.name}"] = tuple(data)
    return represented

  def _represent_changed(self, originals, transformed, known) -> np.ndarray:
    """Representations [n, D] of transformed uint8 images [n, H, W, C]:
    ``known`` [n, D] (the originals') where an image is unchanged, the
    encoder's for the others."""
    changed = np.any(transformed != originals, axis=(1, 2, 3))
    result = np.array(known, np.float32)
    if changed.any():
      result[changed] = self.map(
          representations.compute_representations, transformed[changed]
      )
    return result

  def originals(self, images: np.ndarray) -> np.ndarray:
    """uint8 images as the networks see them: float in [0, 1] (binarised if
    the config binarises)."""
    binarize = self.experiment.config.augment.binarize
    return np.asarray(augment.preprocess(images, binarize))

  def samples(self, key: jax.Array, count: int) -> np.ndarray:
    """``count`` decoded prior samples [count, H, W, C] (generative methods)
    drawn with ``key``."""
    return representations.samples(
        self.experiment.method,
        self.params,
        self.model_state,
        key,
        count,
        self.experiment.mesh,
    )
