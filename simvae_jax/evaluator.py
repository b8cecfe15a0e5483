"""Evaluation of a run's networks on its label task (and ``eval.tasks``), and
its image outputs.

The splits are streamed from their sources batch by batch (only labels and
attributes are held in memory), and representations and reconstructions are
computed by every process together, sharded over all devices; the probes, kNN
and clustering then run on process 0 only, which alone writes ``eval.json``,
``eval_history.jsonl``, the PNG files and the console table (other processes
get results without metrics).
"""

from __future__ import annotations

import json

import jax
import numpy as np
from etils import epath

from simvae_jax import online_probe, outputs, seeding, sharding
from simvae_jax.data import sources
from simvae_jax.evaluation.common import Stopwatch
from simvae_jax.evaluation import (
    fid,
    fid_features,
    representations,
    style,
    suite,
    tasks,
)

ONLINE_NOTE = (
    "online monitor: a linear classifier trained during the run on "
    "un-augmented batches' representations; not the offline protocol"
)
TABLE_COLUMNS = (
    "mlp_probe_acc",
    "linear_probe_acc",
    "knn_acc",
    "knn_k",
    "gmm_acc",
    "gmm_nmi",
    "gmm_ari",
    "recon_mse",
)


def is_main_process() -> bool:
  return jax.process_index() == 0


class Evaluator:
  """Evaluates parameters on the label task and ``eval.tasks``; writes
  ``eval.json`` (latest) and appends to ``eval_history.jsonl``; prints a table.

  The splits' targets are read once; their images are streamed at every
  evaluation. With ``eval.compare_untrained`` the same encoder at
  initialisation is evaluated too (once) as a reference row.
  """

  def __init__(self, experiment, workdir: str, writer=None):
    self.experiment, self.writer = experiment, writer
    self.workdir = epath.Path(workdir)
    config = experiment.config
    limit = config.eval.max_train_examples or None
    self.probe_source = sources.head(experiment.probe_source, limit)
    self.test_source = sources.load_source(config.data, "test")
    self.probe_targets = sources.targets(self.probe_source)
    self.test_targets = sources.targets(self.test_source)
    self.attribute_names = self.test_source.attribute_names
    self.tasks = tasks.make_tasks(config.eval.tasks)
    self.style_tasks = (
        style.style_tasks(experiment.image_shape[-1])
        if tasks.STYLE in config.eval.tasks
        else []
    )
    self.history = (
        outputs.JsonLinesLog(str(self.workdir / "eval_history.jsonl"))
        if is_main_process()
        else None
    )
    self._untrained = None
    # Seconds per component of the next evaluation (and of the images saved
    # before it), reported in its results as "seconds".
    self.timer = Stopwatch()
    self._extractor = None

  def resume(self, step: int) -> None:
    """Drops history entries after ``step`` (logged by an interrupted run)."""
    if self.history is not None:
      self.history.drop_after(step)

  def _map(self, fn, params, model_state, images):
    return fn(
        self.experiment.method,
        params,
        model_state,
        images,
        self.experiment.config.augment.binarize,
        self.experiment.mesh,
    )

  def evaluate_params(
      self, params, model_state, reconstruction: bool = True
  ) -> dict:
    """See ``_evaluate`` (its times are not recorded)."""
    return self._evaluate(params, model_state, reconstruction, Stopwatch())[0]

  def _evaluate(self, params, model_state, reconstruction: bool, timer):
    """({"label": metrics, "tasks": {...}}, test representations [N, D]) of
    the networks (inference mode): probes, kNN, GMM and (if
    ``reconstruction``) the reconstruction MSE on the label; probes, kNN and
    the majority baseline on each of ``eval.tasks``. ``{"label": {}}`` on
    processes other than 0. Component times accumulate in ``timer``
    (``Stopwatch``)."""
    config = self.experiment.config
    represent = representations.compute_representations
    with self.timer("representations"):
      train_repr = self._map(represent, params, model_state, self.probe_source)
      test_repr = self._map(represent, params, model_state, self.test_source)
    recon_mse = None
    if reconstruction:
      with self.timer("reconstruction"):
        recon_mse = self._map(
            representations.reconstruction_mse,
            params,
            model_state,
            self.test_source,
        )
    style_data = self._style_representations(params, model_state, timer)
    if not is_main_process():
      return {"label": {}}, test_repr
    further = tasks.select(
        self.tasks,
        train_repr,
        self.probe_targets,
        test_repr,
        self.test_targets,
        self.attribute_names,
    )
    further.update(style_data)
    label, task_results = suite.evaluate(
        (
            train_repr,
            self.probe_targets["label"],
            test_repr,
            self.test_targets["label"],
        ),
        further,
        config.eval,
        config.seed,
        timer,
    )
    if recon_mse is not None:
      label["recon_mse"] = recon_mse
    results = {"label": label}
    if task_results:
      results["tasks"] = task_results
    return results, test_repr

  def _style_representations(self, params, model_state, timer) -> dict:
    """{"style/<task>": (train representations [n, D], classes [n], test
    representations, classes)} of each style task's transformed images (the
    first ``eval.style_max_examples`` of each split); computed by all
    processes together."""
    if not self.style_tasks:
      return {}
    config = self.experiment.config
    limit = config.eval.style_max_examples
    splits = {
        "train": sources.read_all(self.probe_source, limit)[0],
        "test": sources.read_all(self.test_source, limit)[0],
    }
    represented = {}
    for task in self.style_tasks:
      data = []
      for split, images in splits.items():
        classes = style.draw_classes(task, len(images), config.seed, split)
        with self.timer("style_images"):
          transformed = style.transform_images(task, images, classes)
        with self.timer("representations"):
          data += [
              self._map(
                  representations.compute_representations,
                  params,
                  model_state,
                  transformed,
              ),
              classes,
          ]
      represented[f"style/{task.name}"] = tuple(data)
    return represented

  def __call__(
      self,
      params,
      model_state,
      step: int,
      monitor: dict | None = None,
      final: bool = False,
  ) -> dict:
    """Evaluates; discriminative methods have a reconstruction error only in the
    final evaluation, after their post-hoc decoder is trained. ``monitor``:
    the online probe's state (``TrainState.online_probe``), scored on the
    test representations as ``results["online"]`` when there is one."""
    config = self.experiment.config
    with_decoder = final or self.experiment.method.generative
    evaluation, test_repr = self._evaluate(
        params, model_state, with_decoder, self.timer
    )
    results = {"step": int(step), **evaluation}
    if monitor and is_main_process():
      results["online"] = {
          "linear_probe_acc": online_probe.test_accuracy(
              monitor, test_repr, self.test_targets["label"]
          ),
          "note": ONLINE_NOTE,
      }
    if final and is_main_process():
      outputs.save_latents(
          str(self.workdir / "latents.png"),
          test_repr,
          self.test_targets["label"],
          f"{config.method}, {config.data.name} test (PCA)",
      )
    rows = [[f"{config.method} (step {step})", results["label"]]]
    if final and config.fid.enabled:
      with self.timer("fid"):
        results["fid"] = self.evaluate_fid(params, model_state)
    if config.eval.compare_untrained:
      if self._untrained is None:
        with self.timer("untrained_encoder"):
          untrained = self.experiment.initial_state()
          self._untrained = self.evaluate_params(
              untrained.params,
              untrained.model_state,
              self.experiment.method.generative,
          )
      results["untrained_encoder"] = self._untrained
      rows.append(["untrained encoder", self._untrained["label"]])
    results["seconds"] = {
        name: round(seconds, 2) for name, seconds in self.timer.seconds.items()
    }
    self.timer = Stopwatch()
    if is_main_process():
      self._write(step, results, rows)
    return results

  def _originals(self, images: np.ndarray) -> np.ndarray:
    """uint8 images as the networks see them: float in [0, 1] (binarised if
    the config binarises)."""
    originals = images.astype(np.float32) / 255.0
    if self.experiment.config.augment.binarize:
      originals = (originals > 0.5).astype(np.float32)
    return originals

  def _samples(self, params, model_state, count: int, batch_size: int = 500):
    """``count`` decoded prior samples [count, H, W, C] (generative methods)."""
    sample = jax.jit(self.experiment.method.sample, static_argnums=3)
    key = seeding.purpose_key(self.experiment.config.seed, "fid_samples")
    batches = []
    for index in range(0, count, batch_size):
      batch_key = sharding.replicate(
          jax.random.fold_in(key, index), self.experiment.mesh
      )
      batches.append(
          np.asarray(sample(params, model_state, batch_key, batch_size))
      )
    return np.concatenate(batches)[:count]

  def evaluate_fid(self, params, model_state) -> dict | None:
    """FID of reconstructions of the first ``fid.num_images`` test images and
    (generative methods) of as many prior samples, against those test images;
    ``features`` names the feature extractor. None on processes other than 0."""
    config = self.experiment.config
    count = min(config.fid.num_images, len(self.test_source))
    images = sources.read_images(self.test_source, 0, count)
    recon = self._map(
        representations.reconstructions, params, model_state, images
    )
    samples = (
        self._samples(params, model_state, count)
        if self.experiment.method.generative
        else None
    )
    if not is_main_process():
      return None
    if self._extractor is None:
      self._extractor = fid_features.make_extractor(
          config.fid,
          config.data.name,
          *sources.read_all(
              self.experiment.probe_source,
              config.fid.classifier_max_examples or None,
          ),
      )
    name, extract = self._extractor
    real = extract(self._originals(images))
    result = {
        "features": name,
        "comparable_to_inception_fid": name == fid_features.INCEPTION,
        "num_images": int(count),
        "reconstructions": fid.fid_from_features(real, extract(recon)),
    }
    if samples is not None:
      result["samples"] = fid.fid_from_features(real, extract(samples))
    return result

  def _write(self, step: int, results: dict, rows: list) -> None:
    config = self.experiment.config
    (self.workdir / "eval.json").write_text(json.dumps(results, indent=2))
    self.history.write(step, {k: v for k, v in results.items() if k != "step"})
    if self.writer is not None:
      numbers = {
          f"eval/{name}": value
          for name, value in results["label"].items()
          if isinstance(value, (int, float))
      }
      if "online" in results:
        numbers["online/test_acc"] = results["online"]["linear_probe_acc"]
      for name in ("reconstructions", "samples"):
        if name in (results.get("fid") or {}):
          numbers[f"eval/fid_{name}"] = results["fid"][name]
      self.writer.write_scalars(step, numbers)
    table = [
        [name] + [label.get(c, "-") for c in TABLE_COLUMNS]
        for name, label in rows
    ]
    print(
        f"\nEvaluation on the {len(self.test_source)} {config.data.name} test "
        f"images (protocol in eval.json):\n"
        + outputs.format_table(["representation", *TABLE_COLUMNS], table),
        flush=True,
    )
    if results.get("tasks"):
      columns = ("mlp_probe_acc", "knn_acc", "majority_acc")
      print(
          "Further tasks (eval.tasks):\n"
          + outputs.format_table(
              ["task", *columns],
              [
                  [name] + [r[c] for c in columns]
                  for name, r in results["tasks"].items()
              ],
          ),
          flush=True,
      )
    if "online" in results:
      print(
          f"Online monitor, test accuracy "
          f"{results['online']['linear_probe_acc']:.4f} ({ONLINE_NOTE})",
          flush=True,
      )

  def save_images(self, params, model_state, step: int) -> None:
    """reconstructions.png (originals above reconstructions; the arrays in
    reconstructions.npz) and, for generative methods, samples.png; also to
    the metric writer. Every process computes, process 0 writes."""
    with self.timer("images"):
      self._save_images(params, model_state, step)

  def _save_images(self, params, model_state, step: int) -> None:
    config, method = self.experiment.config, self.experiment.method
    images = sources.read_images(self.test_source, 0, config.eval.num_images)
    originals = self._originals(images)
    recon = self._map(
        representations.reconstructions, params, model_state, images
    )
    figures = {"reconstructions": outputs.image_grid([originals, recon])}
    if method.generative:
      key = sharding.replicate(
          seeding.purpose_key(config.seed, "samples"), self.experiment.mesh
      )
      samples = np.asarray(
          jax.jit(method.sample, static_argnums=3)(params, model_state, key, 32)
      )
      figures["samples"] = outputs.samples_grid(samples)
    if not is_main_process():
      return
    for name, grid in figures.items():
      outputs.save_image(
          str(self.workdir / f"{name}.png"), grid, images.shape[1]
      )
    np.savez_compressed(
        str(self.workdir / "reconstructions.npz"),
        originals=originals,
        reconstructions=recon,
    )
    if method.generative:
      np.savez_compressed(str(self.workdir / "samples.npz"), samples=samples)
    if self.writer is not None:
      self.writer.write_images(step, figures)
