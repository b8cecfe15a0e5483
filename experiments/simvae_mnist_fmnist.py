"""SimVAE on MNIST and Fashion-MNIST over seeds: the results file and plot.

python experiments/simvae_mnist_fmnist.py --num_epochs=8 --learning_rate=1e-3

Each (dataset, seed) trains in ``--root/<dataset>_seed<k>`` with the npz source
from ``--data_dir`` and is evaluated every ``--eval_every_epochs`` epochs; jobs
that already finished are skipped and interrupted ones resume (``runs.run_job``). Then
``experiments/results/simvae_mnist_fmnist.md`` gets mean +/- standard error over
seeds next to the paper's numbers, and ``simvae_mnist_fmnist.png`` the test
accuracy against epochs.
"""

from __future__ import annotations

import os
import platform

import jax
import matplotlib.figure
import numpy as np
from absl import flags, logging

import common
from simvae_jax import runs
from simvae_jax.paper import DATASET_NAMES, TABLE1

common.define_flags(root="runs/simvae_mnist_fmnist", name="simvae_mnist_fmnist")
FLAGS = common.FLAGS
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every_epochs", 1, "Evaluate every N epochs (0: only at the end)."
)

TARGETS = {
    "mnist": {"mlp_probe_acc": 98.0, "knn_acc": 98.0},
    "fashion_mnist": {"mlp_probe_acc": 81.5, "knn_acc": 86.0},
}
METRICS = ("mlp_probe_acc", "linear_probe_acc", "knn_acc", "gmm_acc")


def paper(dataset: str) -> dict:
  """The paper's SimVAE MLP probe and kNN accuracy ({} if not reported)."""
  if dataset not in TABLE1["simvae"]:
    return {}
  mlp_probe, knn = TABLE1["simvae"][dataset]
  return {"mlp_probe_acc": mlp_probe, "knn_acc": knn}


def paper_cell(dataset: str) -> str:
  reported = paper(dataset)
  return (
      f"{reported['mlp_probe_acc']} / {reported['knn_acc']}"
      if reported
      else "—"
  )


def targets_cell(dataset: str, finals: list) -> str:
  """Which of the dataset's targets the mean over seeds meets."""
  parts = []
  for metric, target in TARGETS.get(dataset, {}).items():
    mean = 100 * runs.mean_and_error([f["label"][metric] for f in finals])[0]
    name = {"mlp_probe_acc": "MLP", "knn_acc": "kNN"}[metric]
    parts.append(
        f"{name} {'met' if mean >= target else 'not met'} (>= {target})"
    )
  return ", ".join(parts) or "—"


def make_config(dataset: str, seed: int):
  config = common.job_config(dataset, seed)
  config.eval.every_steps = _EVAL_EVERY.value * runs.epoch_length(config)
  return config


def plot(histories: dict, path: str) -> None:
  fig = matplotlib.figure.Figure(figsize=(5.5 * len(histories), 4))
  axes = fig.subplots(1, len(histories))
  for ax, (dataset, seed_histories) in zip(
      np.atleast_1d(axes), histories.items()
  ):
    epochs = [h["epoch"] for h in seed_histories[0]]
    for metric, colour in (
        ("mlp_probe_acc", "C0"),
        ("knn_acc", "C1"),
        ("linear_probe_acc", "C2"),
    ):
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
      if metric in paper(dataset):
        ax.axhline(
            paper(dataset)[metric],
            color=colour,
            ls="--",
            lw=1,
            label=f"paper {metric}, 400 epochs",
        )
    ax.set(
        title=DATASET_NAMES[dataset], xlabel="epoch", ylabel="test accuracy (%)"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def write_report(finals, walls, command: str, name: str) -> str:
  config = make_config(FLAGS.datasets[0], 0)
  rows = []
  for dataset in FLAGS.datasets:
    cells = [
        runs.format_mean_error([f["label"][m] for f in finals[dataset]])
        for m in METRICS
    ]
    rows.append(
        f"| {DATASET_NAMES[dataset]} | "
        + " | ".join(cells)
        + f" | {paper_cell(dataset)} | {targets_cell(dataset, finals[dataset])} |"
    )
  per_run = "\n".join(
      f"| {DATASET_NAMES[d]} | {s} | "
      + " | ".join(f"{100 * f['label'][m]:.2f}" for m in METRICS)
      + f" | {f['label']['knn_k']} | {f['label']['mlp_probe_epoch']} | "
      f"{f['label']['recon_mse']:.4f} | {w / 60:.1f} |"
      for d in FLAGS.datasets
      for s, f, w in zip(FLAGS.seeds, finals[d], walls[d])
  )
  total_wall = sum(sum(w) for w in walls.values())
  return f"""# SimVAE on MNIST and Fashion-MNIST ({FLAGS.num_epochs}-epoch schedule)

Test accuracy (%) of frozen SimVAE representations, mean ± standard error over
seeds {", ".join(FLAGS.seeds)}. **Schedule: {FLAGS.num_epochs} epochs** (the paper trains for 400),
{config.batch_size} images x J = {config.num_views} views per step,
{common.describe_optimizer(config)}, {config.likelihood.name}
likelihood (log sigma_x^2 = {config.likelihood.log_variance}), prior sigma^2 =
{config.simvae.prior_variance}, N(0, I) prior on zbar: {config.simvae.mean_prior},
{runs.describe_setup(config)}, config
`configs/<dataset>.py:{FLAGS.variant}`.

| dataset | MLP probe | linear probe | kNN | GMM | paper MP / KNN (400 epochs) | targets |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Protocol: {finals[FLAGS.datasets[0]][0]["label"]["protocol"]}. The paper (and the
released code) report the best test accuracy over probe epochs and k instead.

Accuracy against epochs (mean over seeds, evaluated every {_EVAL_EVERY.value} epoch(s)):
![accuracy vs epochs]({name}.png)

Per run (final evaluation):

| dataset | seed | MLP probe | linear probe | kNN | GMM | k | probe epoch | recon MSE | wall (min) |
|---|---|---|---|---|---|---|---|---|---|
{per_run}

Command: `{command}`

Wall time: {total_wall / 60:.0f} minutes for all runs (training and evaluations),
on {platform.machine()} with {os.cpu_count()} CPU cores, JAX {jax.__version__}
({jax.default_backend()} backend), one run at a time.
"""


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
  finals, histories, walls = {}, {}, {}
  for dataset in FLAGS.datasets:
    for seed in map(int, FLAGS.seeds):
      workdir = os.path.join(FLAGS.root, f"{dataset}_seed{seed}")
      final, history, wall = runs.run_job(make_config(dataset, seed), workdir)
      finals.setdefault(dataset, []).append(final)
      histories.setdefault(dataset, []).append(history)
      walls.setdefault(dataset, []).append(wall)
  name = common.results_name()
  plot(histories, os.path.join(FLAGS.results, f"{name}.png"))
  command = common.command_line()
  common.write_report(name, write_report(finals, walls, command, name))


if __name__ == "__main__":
  common.run_script(main)
