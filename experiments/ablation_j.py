"""The number of views J (paper Fig. 8): SimVAE and multi-positive SimCLR.

python experiments/ablation_j.py --num_epochs=3 --learning_rate=1e-3 --seeds=0
python experiments/ablation_j.py --num_epochs=400                   # GPU

Every (method, J, dataset, seed) trains with the same number of images per
step (the config's batch size) and the same number of epochs, so a larger J
means more views of the same images, not more images; J = 1 is one
augmented view per image (SimCLR needs two views and starts at 2).
Jobs live in ``--root/<method>/<dataset>_J<j>_seed<k>``. Writes
``experiments/results/ablation_j.md`` (accuracy and wall time per J) and
``ablation_j.png`` (accuracy against J, error bars over seeds).
"""

from __future__ import annotations

import os
import platform

import jax
import matplotlib.figure
import numpy as np
from absl import flags, logging

import common
import reports
import runs
from simvae_jax import methods
from paper import dataset_name

FLAGS = common.FLAGS
METRICS = ("mlp_probe_acc", "knn_acc")


def define_flags() -> None:
  common.define_flags(
      root="runs/ablation_j",
      name="ablation_j",
      datasets=("mnist",),
      num_epochs=3,
  )
  flags.DEFINE_list("views", ["1", "2", "4", "6", "10"], "Values of J.")
  flags.DEFINE_list("methods", ["simvae", "simclr"], "Methods.")


def make_config(setting: tuple[str, int], dataset: str, seed: int):
  """The job of a (method, J) setting."""
  config = common.job_config(dataset, seed)
  config.method, config.num_views = setting
  return config


def settings(options) -> list[tuple[str, int]]:
  """(method, J) pairs of ``options.methods`` and ``options.views`` that are
  run (J at least the method's minimum), in order."""
  return [
      (method, views)
      for method in options.methods
      for views in map(int, options.views)
      if views >= methods.min_views(method)
  ]


def run_all() -> tuple[dict, dict]:
  """({(method, J): {dataset: [eval.json per seed]}}, the same of walls)."""
  jobs = common.grid(
      settings(FLAGS),
      lambda setting, dataset, seed: f"{setting[0]}/{dataset}_J{setting[1]}_seed{seed}",
  )
  finals, walls, _ = common.run_grid(jobs, make_config)
  return finals, walls


def plot(finals: dict, options, path: str) -> None:
  fig = matplotlib.figure.Figure(
      figsize=(5 * len(options.datasets), 4), layout="constrained"
  )
  axes = np.atleast_1d(fig.subplots(1, len(options.datasets)))
  for ax, dataset in zip(axes, options.datasets):
    for index, method in enumerate(options.methods):
      views = [j for m, j in settings(options) if m == method]
      for metric, style in zip(METRICS, ("-o", "--s")):
        stats = [
            runs.mean_and_error(
                [r["label"][metric] for r in finals[(method, j)][dataset]]
            )
            for j in views
        ]
        mean = 100 * np.array([s[0] for s in stats])
        error = 100 * np.nan_to_num(np.array([s[1] for s in stats]))
        ax.errorbar(
            views,
            mean,
            yerr=error,
            fmt=style,
            color=f"C{index}",
            capsize=3,
            ms=4,
            label=f"{method} {metric}",
        )
    ax.set(
        title=dataset_name(dataset),
        xlabel="views per image J",
        ylabel="test accuracy (%)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.savefig(path, dpi=120)


def write_report(
    finals: dict, walls: dict, options, config, command: str, name: str
) -> str:
  """The results file: ``options`` the script's flags, ``config`` a job's."""
  total_wall = sum(sum(w) for per in walls.values() for w in per.values())
  return f"""# Accuracy against the number of views J ({options.num_epochs}-epoch schedule)

Top-1 test accuracy (%) of frozen representations, mean ± standard error over
seeds {", ".join(options.seeds)} (MP = MLP probe; epoch and k chosen on a
validation split of train, test once). Every setting sees {config.batch_size}
images per step for {options.num_epochs} epochs, whatever J; {config.optimizer.name}
lr {config.optimizer.learning_rate:g}; the same {runs.describe_setup(config)}.
SimCLR with J > 2 is its multi-positive form (every other view of the image is
a positive). Wall time per job covers training and evaluation.

{reports.views_table(finals, walls, settings(options), options.datasets)}

![accuracy against J]({name}.png)

Command: `{command}`

Wall time: {total_wall / 60:.0f} minutes for all jobs, on {platform.machine()}
with {os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()} backend).
"""


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  finals, walls = run_all()
  name = common.results_name()
  plot(finals, FLAGS, os.path.join(FLAGS.results, f"{name}.png"))
  config = make_config((FLAGS.methods[0], 2), FLAGS.datasets[0], 0)
  command = common.command_line()
  report = write_report(finals, walls, FLAGS, config, command, name)
  common.write_report(name, report)


if __name__ == "__main__":
  define_flags()
  common.run_script(main)
