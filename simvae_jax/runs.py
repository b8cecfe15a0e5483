"""Helpers for experiment scripts that run many (method, dataset, seed) jobs.

A job trains and evaluates in its own workdir. A finished job leaves
``job.json`` (its resolved config and the wall seconds spent on it); running it
again with the same config is skipped, and an interrupted job resumes from its
latest checkpoint.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from simvae_jax import outputs, train
from simvae_jax.base_config import get_digits_config, get_mnist_like_config
from simvae_jax.data import pipeline, sources


def dataset_config(dataset: str, variant: str, data_dir: str):
  """The config of ``dataset`` reading ``<data_dir>/<dataset>.npz`` (digits:
  the built-in source)."""
  if dataset == "digits":
    return get_digits_config()
  config = get_mnist_like_config(dataset, variant)
  config.data.source = "npz"
  config.data.path = os.path.join(data_dir, f"{dataset}.npz")
  return config


def epoch_length(config) -> int:
  """Training steps per epoch of ``config``'s data."""
  return pipeline.steps_per_epoch(len(sources.load_source(config.data, "train")),
                                  config.batch_size)


# Config fields a job may change and still continue from its checkpoint.
RESUMABLE_CHANGES = ("num_epochs", "num_steps")


def check_resumable(previous: dict, resolved: dict, workdir: str) -> None:
  """Raises unless ``resolved`` differs from the config ``previous`` of the run
  in ``workdir`` only in ``RESUMABLE_CHANGES`` (a longer or shorter schedule)."""
  changed = sorted(key for key in previous.keys() | resolved.keys()
                   if key not in RESUMABLE_CHANGES and previous.get(key) != resolved.get(key))
  if changed:
    raise ValueError(f"{workdir} holds a run with a different config ({', '.join(changed)}); "
                     "its checkpoint cannot continue under the new one. Use another "
                     "directory (e.g. --root) or delete this one.")


def run_job(config, workdir: str) -> tuple[dict, list[dict], float]:
  """Trains and evaluates unless a finished job with the same config is there.

  A job whose config changed only in its length (``RESUMABLE_CHANGES``) continues
  from its checkpoint; any other change raises. Returns (final eval.json, eval
  history with an ``epoch`` field, wall seconds of the invocations that finished
  the job).
  """
  job_path = os.path.join(workdir, "job.json")
  resolved = json.loads(config.to_json_best_effort())
  config_path = os.path.join(workdir, "config.json")
  if os.path.exists(config_path):
    with open(config_path) as file:
      check_resumable(json.load(file), resolved, workdir)
  job = {}
  if os.path.exists(job_path):
    with open(job_path) as file:
      job = json.load(file)
  if job.get("config") != resolved:
    started = time.time()
    train.train_and_evaluate(config, workdir)
    job = {"config": resolved,
           "wall_seconds": job.get("wall_seconds", 0.0) + time.time() - started}
    with open(job_path, "w") as file:
      json.dump(job, file)
  per_epoch = epoch_length(config)
  history = outputs.read_jsonl(os.path.join(workdir, "eval_history.jsonl"))
  for entry in history:
    entry["epoch"] = entry["step"] / per_epoch
  with open(os.path.join(workdir, "eval.json")) as file:
    return json.load(file), history, job["wall_seconds"]


def mean_and_error(values) -> tuple[float, float]:
  """Mean and standard error (ddof=1) of a list; error NaN for one value."""
  values = np.asarray(values, np.float64)
  if len(values) < 2:
    return float(values.mean()), float("nan")
  return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def format_mean_error(values, scale: float = 100.0, digits: int = 1) -> str:
  """"mean ± s.e." of ``scale * values``; just the mean for a single value."""
  mean, error = mean_and_error([scale * v for v in values])
  if len(values) < 2:
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {error:.{digits}f}"
