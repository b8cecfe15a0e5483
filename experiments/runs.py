"""Helpers for experiment scripts that run many (method, dataset, seed) jobs.

The scripts name datasets by their config (``simvae_jax.configs``), which
holds the dataset's facts (``data.offline_files``, ``PAPER_TABLE1``).

A job trains and evaluates in its own workdir. A finished job leaves
``job.json`` (its resolved config and the wall seconds spent on it); running it
again with the same config is skipped, and an interrupted job resumes from its
latest checkpoint. A job stopped by SIGTERM/SIGINT raises ``Interrupted`` so
that the script stops too (re-running it resumes the job).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

import numpy as np
from etils import epath

from simvae_jax import configs, outputs, train
from simvae_jax import workdir as run_dir
from simvae_jax.data import pipeline, sources


def dataset_config(dataset: str, variant: str | None, data_dir: str):
  """The config of ``dataset`` (variant ``variant``) reading its .npz files
  (``data.offline_files``) from ``data_dir``; datasets without such files
  (digits) keep their source."""
  config = configs.load(dataset, variant)
  if config.data.offline_files:
    config.data.source = "npz"
    config.data.path = ",".join(
        os.path.join(data_dir, f) for f in config.data.offline_files
    )
  return config


def describe_setup(config) -> str:
  """One paragraph naming the networks and augmentations of ``config``."""
  sections = lambda kind, name: dict(config.model[kind].get(name) or {})
  augment = config.augment
  colour = (
      f", colour jitter {tuple(augment.color_jitter)} x "
      f"{augment.color_jitter_strength:g} with p = {augment.color_jitter_prob:g}, "
      f"grayscale p = {augment.grayscale_prob:g}"
      if augment.color_jitter_prob or augment.grayscale_prob
      else ""
  )
  return (
      f"encoder `{config.model.encoder}` {sections('encoders', config.model.encoder)} "
      f"with a {config.model.latent_dim}-d representation, decoder "
      f"`{config.model.decoder}` {sections('decoders', config.model.decoder)}, "
      f"{config.model.dtype}; augmentations: crop scale "
      f"{tuple(augment.crop_scale)}, flips {augment.flip}{colour}"
  )


def results_name(
    results_dir: str,
    name: str,
    replace: bool,
    suffixes: tuple[str, ...] = (".md",),
) -> str:
  """``name``, or, unless ``replace``, the first of ``name-2``, ``name-3``, ...
  for which no ``<results_dir>/<name><suffix>`` exists yet, so that a run on a
  subset never overwrites committed results."""
  taken = lambda stem: any(
      os.path.exists(os.path.join(results_dir, stem + suffix))
      for suffix in suffixes
  )
  stem, version = name, 2
  while not replace and taken(stem):
    stem, version = f"{name}-{version}", version + 1
  return stem


def epoch_length(config) -> int:
  """Training steps per epoch of ``config``'s data."""
  return pipeline.steps_per_epoch(
      len(sources.load_source(config.data, "train")), config.batch_size
  )


class Interrupted(Exception):
  """A job's training was stopped by a signal (its checkpoint is saved)."""


def run_job(config, workdir: str) -> tuple[dict, list[dict], float]:
  """Trains and evaluates unless a finished job with the same config is there.

  A job whose config changed only in ``workdir.RESUMABLE_CHANGES`` (e.g. a
  longer schedule) continues from its checkpoint; any other change raises.
  Returns (final eval.json, eval history with an ``epoch`` field, wall seconds
  of the invocations that finished the job).
  """
  job_path = epath.Path(workdir) / "job.json"
  resolved = run_dir.resolved(config)
  run_dir.check_resumable(config, workdir)
  job = json.loads(job_path.read_text()) if job_path.exists() else {}
  if job.get("config") != resolved or not job.get("finished", True):
    started = time.time()
    result = train.train_and_evaluate(config, workdir)
    interrupted = bool(result.get("interrupted"))
    job = {
        "config": resolved,
        "wall_seconds": job.get("wall_seconds", 0.0) + time.time() - started,
        "finished": not interrupted,
    }
    job_path.parent.mkdir(parents=True, exist_ok=True)
    job_path.write_text(json.dumps(job))
    if interrupted:
      raise Interrupted(
          f"{workdir} was stopped by a signal at step {result['step']} "
          f"(checkpoint saved); re-run the same command to resume."
      )
  per_epoch = epoch_length(config)
  history = outputs.read_jsonl(str(epath.Path(workdir) / "eval_history.jsonl"))
  for entry in history:
    entry["epoch"] = entry["step"] / per_epoch
  final = json.loads((epath.Path(workdir) / "eval.json").read_text())
  return final, history, job["wall_seconds"]


@dataclasses.dataclass(frozen=True)
class Job:
  """One run of an experiment's grid: ``setting`` (e.g. a method name, or a
  (method, J) pair) trained on ``dataset`` with ``seed``, in ``<root>/<name>``.
  """

  setting: Any
  dataset: str
  seed: int
  name: str


def grid(
    settings, datasets, seeds, name: Callable[[Any, str, int], str]
) -> list[Job]:
  """Every (setting, dataset, seed) in that order, ``name(setting, dataset,
  seed)`` naming each job's folder: an experiment's jobs as data, which a
  script can print (``--dry_run``) or run (``run_grid``)."""
  return [
      Job(setting, dataset, seed, name(setting, dataset, seed))
      for setting in settings
      for dataset in datasets
      for seed in seeds
  ]


def job_state(config, workdir: str) -> str:
  """ "finished" (``run_job`` would reuse it), "resumes" (a checkpoint or an
  interrupted job is there) or "new"."""
  path = epath.Path(workdir)
  job_path = path / "job.json"
  if job_path.exists():
    job = json.loads(job_path.read_text())
    if job.get("finished", True) and job.get("config") == run_dir.resolved(
        config
    ):
      return "finished"
  return "resumes" if path.exists() and any(path.iterdir()) else "new"


def run_grid(
    jobs: list[Job], make_config, root: str
) -> tuple[dict, dict, dict]:
  """Runs (or reuses, ``run_job``) each job's ``make_config(setting, dataset,
  seed)`` in ``<root>/<job.name>``.

  Returns ({setting: {dataset: [eval.json per seed]}}, the same of wall
  seconds, the same of eval histories), seeds in the jobs' order.
  """
  finals, walls, histories = {}, {}, {}
  for job in jobs:
    final, history, wall = run_job(
        make_config(job.setting, job.dataset, job.seed),
        os.path.join(root, job.name),
    )
    for results, value in zip(
        (finals, walls, histories), (final, wall, history)
    ):
      results.setdefault(job.setting, {}).setdefault(job.dataset, []).append(
          value
      )
  return finals, walls, histories


def mean_and_error(values) -> tuple[float, float]:
  """Mean and standard error (ddof=1) of a list; error NaN for one value."""
  values = np.asarray(values, np.float64)
  if len(values) < 2:
    return float(values.mean()), float("nan")
  return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def markdown_table(header, rows) -> str:
  """A markdown table: ``header`` [columns] and ``rows`` [[cells]] of any
  values (printed with str)."""
  lines = ["| " + " | ".join(map(str, header)) + " |"]
  lines.append("|" + "---|" * len(header))
  lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
  return "\n".join(lines)


def format_mean_error(values, scale: float = 100.0, digits: int = 1) -> str:
  """ "mean ± s.e." of ``scale * values``; just the mean for a single value."""
  mean, error = mean_and_error([scale * v for v in values])
  if len(values) < 2:
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {error:.{digits}f}"
