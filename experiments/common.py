"""Flags every experiment script shares (data, seeds, schedule, outputs).

Each script defines its flags in its own ``define_flags()`` (calling
``define_flags(root=..., name=...)`` here with its defaults) only when run as a
program, so that tests import every script into one process; its report
functions take the parsed flags (``options``) and configs as arguments.
"""

from __future__ import annotations

import os
import sys

import matplotlib.figure
import numpy as np
from absl import app, flags

import runs
from simvae_jax import cli, methods
from simvae_jax.data import augment

FLAGS = flags.FLAGS
# Metric drawn by plot_curves: its colour.
CURVE_METRICS = {
    "mlp_probe_acc": "C0",
    "knn_acc": "C1",
    "linear_probe_acc": "C2",
}


def define_flags(
    root: str,
    name: str,
    datasets=("mnist", "fashion_mnist"),
    num_epochs: int = 400,
) -> None:
  flags.DEFINE_string(
      "root",
      root,
      "Job directories (finished jobs are skipped, "
      "interrupted ones resume).",
  )
  flags.DEFINE_string(
      "data_dir", "../shared/datasets", "Folder of the .npz files."
  )
  flags.DEFINE_string(
      "results", "experiments/results", "Where to write results."
  )
  flags.DEFINE_string("name", name, "Results file name (without extension).")
  flags.DEFINE_bool(
      "replace",
      False,
      "Overwrite existing results files of the "
      "same name (otherwise a new name, NAME-2, ..., is used).",
  )
  flags.DEFINE_list("datasets", list(datasets), "Datasets.")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
  flags.DEFINE_string(
      "variant", "paper", "Config variant (configs/<dataset>.py:VARIANT)."
  )
  flags.DEFINE_integer(
      "num_epochs", num_epochs, "Training epochs (paper: 400)."
  )
  flags.DEFINE_float(
      "learning_rate", 0.0, "Learning rate; 0 keeps the config's."
  )
  flags.DEFINE_enum(
      "schedule",
      None,
      ["constant", "warmup_cosine"],
      "Learning-rate schedule; unset keeps the config's (constant).",
  )
  flags.DEFINE_float(
      "warmup_epochs", 1.0, "Linear warmup of --schedule=warmup_cosine."
  )
  flags.DEFINE_bool(
      "dry_run",
      False,
      "Print the jobs (folder and state: finished, resumes, new) and exit.",
  )
  flags.DEFINE_enum(
      "flip",
      None,
      list(augment.FLIPS),
      "Flip augmentation; unset keeps the config's (digits are not "
      "mirror-symmetric: invariance to flips costs content accuracy).",
  )


def define_method_flags() -> None:
  """Flags of scripts that train several methods with one shared setting."""
  flags.DEFINE_list("methods", list(methods.names()), "Methods.")
  flags.DEFINE_integer("num_views", 0, "J; 0 keeps the config's (paper: 10).")
  flags.DEFINE_integer("posthoc_decoder_steps", 0, "0 keeps the config's.")


def job_config(dataset: str, seed: int):
  """``configs/<dataset>.py:<variant>`` with the schedule and flip flags
  applied and no untrained-encoder reference row."""
  config = runs.dataset_config(dataset, FLAGS.variant, FLAGS.data_dir)
  config.seed, config.num_epochs = seed, FLAGS.num_epochs
  if FLAGS.learning_rate:
    config.optimizer.learning_rate = FLAGS.learning_rate
  if FLAGS.schedule:
    config.optimizer.schedule = FLAGS.schedule
    config.optimizer.warmup_epochs = FLAGS.warmup_epochs
  if FLAGS.flip:
    config.augment.flip = FLAGS.flip
  config.eval.compare_untrained = False
  return config


def describe_optimizer(config, with_rate: bool = True) -> str:
  """E.g. 'adam lr 0.001 (eps 0.0001), constant' ('adam (eps 0.0001),
  constant' without the rate)."""
  optimizer = config.optimizer
  schedule = (
      f"linear warmup for {optimizer.warmup_epochs:g} epoch(s), then cosine "
      f"decay to {optimizer.final_learning_rate_fraction:g} x the peak"
      if optimizer.schedule == "warmup_cosine"
      else "constant"
  )
  rate = f" lr {optimizer.learning_rate:g}" if with_rate else ""
  return f"{optimizer.name}{rate} (eps {optimizer.eps:g}), {schedule}"


def method_config(method: str, dataset: str, seed: int):
  """``job_config`` of ``method`` with the method flags applied."""
  config = job_config(dataset, seed)
  config.method = method
  if FLAGS.num_views:
    config.num_views = FLAGS.num_views
  if FLAGS.posthoc_decoder_steps:
    config.posthoc_decoder.num_steps = FLAGS.posthoc_decoder_steps
  return config


def grid(settings, job_name, datasets=None) -> list[runs.Job]:
  """``runs.grid`` of ``settings`` over ``datasets`` (default ``--datasets``)
  and ``--seeds``, ``job_name(setting, dataset, seed)`` naming the folders."""
  seeds = [int(seed) for seed in FLAGS.seeds]
  return runs.grid(settings, datasets or FLAGS.datasets, seeds, job_name)


def method_grid() -> list[runs.Job]:
  """The grid of ``--methods``, in ``<method>/<dataset>_seed<k>``."""
  unknown = [m for m in FLAGS.methods if m not in methods.REGISTRY]
  if unknown:
    raise app.UsageError(
        f"Unknown methods {unknown}; choose from {methods.names()}"
    )
  return grid(
      FLAGS.methods,
      lambda method, dataset, seed: f"{method}/{dataset}_seed{seed}",
  )


def run_grid(jobs: list[runs.Job], make_config) -> tuple[dict, dict, dict]:
  """``runs.run_grid`` in ``--root``. With ``--dry_run``, prints each job's
  folder and state (finished, resumes, new) instead and ends the script."""
  if not FLAGS.dry_run:
    return runs.run_grid(jobs, make_config, FLAGS.root)
  states = []
  for job in jobs:
    workdir = os.path.join(FLAGS.root, job.name)
    config = make_config(job.setting, job.dataset, job.seed)
    states.append(runs.job_state(config, workdir))
    print(f"{states[-1]:8s} {workdir}")
  counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
  print(f"{len(jobs)} jobs ({counts}); nothing was run (--dry_run).")
  sys.exit(0)


def define_eval_every_flag(default: int) -> None:
  flags.DEFINE_integer(
      "eval_every_epochs",
      default,
      "Evaluate every N epochs for the accuracy curve (0: only at the end).",
  )


def evaluate_every_epochs(config, epochs: int):
  """``config`` evaluated every ``epochs`` epochs (0: only at the end)."""
  config.eval.every_steps = epochs * runs.epoch_length(config)
  return config


def plot_curves(panels: dict, references: dict, path: str) -> None:
  """Test accuracy against epochs, one panel per title.

  panels: {title: [eval history per seed]} (``runs.run_job``'s, with
    ``epoch``); each metric is drawn as its mean over seeds.
  references: {title: {metric: accuracy (%)}} drawn as dashed lines (e.g.
    the paper's 400-epoch numbers).
  """
  fig = matplotlib.figure.Figure(figsize=(5.5 * len(panels), 4))
  axes = np.atleast_1d(fig.subplots(1, len(panels)))
  for ax, (title, seed_histories) in zip(axes, panels.items()):
    epochs = [h["epoch"] for h in seed_histories[0]]
    for metric, colour in CURVE_METRICS.items():
      curves = 100 * np.array(
          [[h["label"][metric] for h in history] for history in seed_histories]
      )
      ax.plot(
          epochs,
          curves.mean(0),
          "-o",
          color=colour,
          ms=3,
          label=f"{metric} (mean of {len(seed_histories)} seeds)",
      )
      if metric in references.get(title, {}):
        ax.axhline(
            references[title][metric],
            color=colour,
            ls="--",
            lw=1,
            label=f"paper {metric}, 400 epochs",
        )
    ax.set(title=title, xlabel="epoch", ylabel="test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def run_script(main) -> None:
  """``cli.run(main)`` (one-line errors); a job stopped by SIGTERM/SIGINT
  ends the script with its message and exit code 0 (re-running resumes it)."""

  def guarded(argv):
    try:
      return main(argv)
    except runs.Interrupted as interrupted:
      print(interrupted, flush=True)
      return 0

  cli.run(guarded)


def results_name(suffixes=(".md", ".png")) -> str:
  """A results name none of whose files exist yet (``--name``, else
  ``--name-2``, ...; ``--replace`` keeps ``--name``), in an existing
  ``--results`` folder."""
  os.makedirs(FLAGS.results, exist_ok=True)
  return runs.results_name(FLAGS.results, FLAGS.name, FLAGS.replace, suffixes)


def command_line() -> str:
  """The command that ran this script, for its results file."""
  return "python " + " ".join(sys.argv)


def write_report(name: str, report: str) -> None:
  """Writes ``<results>/<name>.md``, prints it and where it went."""
  path = os.path.join(FLAGS.results, f"{name}.md")
  with open(path, "w") as file:
    file.write(report)
  print(report)
  print(f"Wrote {path}")
