"""The named evaluators a run lists in ``config.evals``.

Each is a small unit with a cadence (``every`` evaluation, only the
``final`` one, or ``once`` and then repeated) that returns named entries of
the results (or writes files and returns none):

* ``representation``: probes, kNN and GMM on the label and ``eval.tasks``
  (all tasks' probes in one program), and the reconstruction error once the
  decoder is trained -> ``label``, ``tasks``;
* ``online``: the online monitor scored on the test split -> ``online``;
* ``fid``: FID of reconstructions and samples (``fid.enabled``) -> ``fid``;
* ``images``: reconstructions.png / samples.png (and their arrays);
* ``latents``: latents.png, a PCA of the test representations;
* ``untrained``: the same encoder at initialisation, evaluated once
  (``eval.compare_untrained``) -> ``untrained_encoder``.

A unit applies when its settings ask for it (e.g. ``fid`` only with
``fid.enabled``). Units read a ``context.Context``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from simvae_jax import online_probe, outputs, seeding
from simvae_jax.data import sources
from simvae_jax.evaluation import (
    fid,
    fid_features,
    report,
    representations,
    style,
    suite,
    tasks,
)
from simvae_jax.evaluation.common import Stopwatch
from simvae_jax.evaluation.context import Context, is_main_process

EVERY, FINAL, ONCE = "every", "final", "once"


class Representation:
  """Probes, kNN and GMM on the label and on ``eval.tasks``, and the
  reconstruction error when the decoder is ready."""

  name, cadence = "representation", EVERY

  def __init__(self, experiment):
    config = experiment.config
    self.tasks = tasks.make_tasks(config.eval.tasks)
    self.style_tasks = (
        style.style_tasks(experiment.image_shape[-1])
        if tasks.STYLE in config.eval.tasks
        else []
    )

  def run(self, context: Context) -> dict:
    config, data = context.experiment.config, context.data
    train_repr, test_repr = context.representations
    recon_mse = None
    if context.reconstruction:
      with context.timer("reconstruction"):
        recon_mse = context.map(
            functools.partial(
                representations.reconstruction_mse, representations=test_repr
            ),
            data.test,
        )
    style_data = context.style_representations(self.style_tasks)
    if not is_main_process():
      return {"label": {}}
    further = tasks.select(
        self.tasks,
        train_repr,
        data.probe_targets,
        test_repr,
        data.test_targets,
        data.test.attribute_names,
    )
    further.update(style_data)
    label, task_results = suite.evaluate(
        (
            train_repr,
            data.probe_targets["label"],
            test_repr,
            data.test_targets["label"],
        ),
        further,
        config.eval,
        config.seed,
        context.timer,
    )
    if recon_mse is not None:
      label["recon_mse"] = recon_mse
    return {"label": label, **({"tasks": task_results} if task_results else {})}


class Online:
  """The online probe's state scored on the test representations."""

  name, cadence = "online", EVERY

  def run(self, context: Context) -> dict:
    if not context.monitor:
      return {}
    test_repr = context.representations[1]
    if not is_main_process():
      return {}
    return {
        "online": {
            "linear_probe_acc": online_probe.test_accuracy(
                context.monitor, test_repr, context.data.test_targets["label"]
            ),
            "note": report.ONLINE_NOTE,
        }
    }


class Untrained:
  """The run's encoder at initialisation, evaluated once by
  ``Representation`` (reconstruction only where the decoder is in the
  objective) and repeated in every later evaluation."""

  name, cadence = "untrained", ONCE

  def __init__(self, experiment):
    self.representation = Representation(experiment)

  def run(self, context: Context) -> dict:
    experiment = context.experiment
    with context.timer("untrained_encoder"):
      state = experiment.initial_state()
      untrained = dataclasses.replace(
          context,
          params=state.params,
          model_state=state.model_state,
          reconstruction=experiment.method.generative,
          timer=Stopwatch(),
      )
      return {"untrained_encoder": self.representation.run(untrained)}


class Fid:
  """FID of reconstructions of the first ``fid.num_images`` test images and
  (generative methods) of as many prior samples, against those test images;
  ``features`` names the feature extractor (built once per run)."""

  name, cadence = "fid", FINAL

  def __init__(self):
    self.extractor = None

  def run(self, context: Context) -> dict:
    experiment, data = context.experiment, context.data
    config = experiment.config
    with context.timer("fid"):
      count = min(config.fid.num_images, len(data.test))
      images = sources.read_images(data.test, 0, count)
      recon = context.map(representations.reconstructions, images)
      samples = (
          self._samples(context, count)
          if experiment.method.generative
          else None
      )
      if not is_main_process():
        return {"fid": None}
      if self.extractor is None:
        self.extractor = fid_features.make_extractor(
            config.fid,
            config.data.name,
            *sources.read_all(
                experiment.probe_source,
                config.fid.classifier_max_examples or None,
            ),
        )
      name, extract = self.extractor
      real = extract(context.originals(images))
      result = {
          "features": name,
          "comparable_to_inception_fid": name == fid_features.INCEPTION,
          "num_images": int(count),
          "reconstructions": fid.fid_from_features(real, extract(recon)),
      }
      if samples is not None:
        result["samples"] = fid.fid_from_features(real, extract(samples))
      return {"fid": result}

  @staticmethod
  def _samples(context: Context, count: int) -> np.ndarray:
    """``count`` prior samples, in batches of 500 (keys folded by offset)."""
    key = seeding.purpose_key(context.experiment.config.seed, "fid_samples")
    batches = [
        context.samples(jax.random.fold_in(key, index), 500)
        for index in range(0, count, 500)
    ]
    return np.concatenate(batches)[:count]


class Images:
  """reconstructions.png (originals above reconstructions; the arrays in
  reconstructions.npz) and, for generative methods, samples.png and
  samples.npz; also to the metric writer. Every process computes, process 0
  writes."""

  name, cadence = "images", FINAL

  def __init__(self, writer=None):
    self.writer = writer

  def run(self, context: Context) -> dict:
    experiment, workdir = context.experiment, context.workdir
    with context.timer("images"):
      images = sources.read_images(
          context.data.test, 0, experiment.config.eval.num_images
      )
      arrays = {
          "originals": context.originals(images),
          "reconstructions": context.map(
              representations.reconstructions, images
          ),
      }
      figures = {
          "reconstructions": outputs.image_grid(
              [arrays["originals"], arrays["reconstructions"]]
          )
      }
      generative = experiment.method.generative
      if generative:
        samples = context.samples(
            seeding.purpose_key(experiment.config.seed, "samples"), 32
        )
        figures["samples"] = outputs.samples_grid(samples)
      if not is_main_process():
        return {}
      for name, grid in figures.items():
        outputs.save_image(str(workdir / f"{name}.png"), grid, images.shape[1])
      np.savez_compressed(str(workdir / "reconstructions.npz"), **arrays)
      if generative:
        np.savez_compressed(str(workdir / "samples.npz"), samples=samples)
      if self.writer is not None:
        self.writer.write_images(context.step, figures)
    return {}


class Latents:
  """latents.png: a PCA of the test representations, coloured by label."""

  name, cadence = "latents", FINAL

  def run(self, context: Context) -> dict:
    test_repr = context.representations[1]
    if is_main_process():
      config = context.experiment.config
      outputs.save_latents(
          str(context.workdir / "latents.png"),
          test_repr,
          context.data.test_targets["label"],
          f"{config.method}, {config.data.name} test (PCA)",
      )
    return {}


NAMES = ("representation", "online", "fid", "images", "latents", "untrained")


def validate_config(config) -> None:
  unknown = [name for name in config.evals if name not in NAMES]
  if unknown:
    raise ValueError(
        f"Unknown evaluators {unknown} in evals; choose from {NAMES}"
    )


def make_evaluators(experiment, writer=None) -> list:
  """The units of ``config.evals`` that the config's settings ask for, in
  the order listed."""
  config = experiment.config
  wanted = {
      "representation": lambda: Representation(experiment),
      "online": lambda: Online() if config.online_probe.enabled else None,
      "fid": lambda: Fid() if config.fid.enabled else None,
      "images": lambda: Images(writer),
      "latents": Latents,
      "untrained": lambda: (
          Untrained(experiment) if config.eval.compare_untrained else None
      ),
  }
  units = [wanted[name]() for name in config.evals]
  return [unit for unit in units if unit is not None]
