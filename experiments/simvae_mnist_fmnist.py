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
from absl import logging

import common
import reports
import runs
from paper import dataset_name, paper_accuracy

FLAGS = common.FLAGS


def define_flags() -> None:
  common.define_flags(
      root="runs/simvae_mnist_fmnist", name="simvae_mnist_fmnist"
  )
  common.define_eval_every_flag(default=1)


def make_config(dataset: str, seed: int):
  return common.evaluate_every_epochs(
      common.job_config(dataset, seed), FLAGS.eval_every_epochs
  )


def write_report(
    finals, walls, options, config, command: str, name: str
) -> str:
  """The results file: ``options`` the script's flags, ``config`` a job's."""
  summary = reports.simvae_summary_table(finals, options.datasets)
  seeds = [int(seed) for seed in options.seeds]
  per_run = reports.per_run_table(finals, walls, options.datasets, seeds)
  total_wall = sum(sum(w) for w in walls.values())
  return f"""# SimVAE on MNIST and Fashion-MNIST ({options.num_epochs}-epoch schedule)

Test accuracy (%) of frozen SimVAE representations, mean ± standard error over
seeds {", ".join(options.seeds)}. **Schedule: {options.num_epochs} epochs** (the paper trains for 400),
{config.batch_size} images x J = {config.num_views} views per step,
{common.describe_optimizer(config)}, {config.likelihood.name}
likelihood (log sigma_x^2 = {config.likelihood.log_variance}), prior sigma^2 =
{config.simvae.prior_variance}, N(0, I) prior on zbar: {config.simvae.mean_prior},
{runs.describe_setup(config)}, config
`configs/<dataset>.py:{options.variant}`.

{summary}

Protocol: {finals[options.datasets[0]][0]["label"]["protocol"]}. The paper (and the
released code) report the best test accuracy over probe epochs and k instead.

Accuracy against epochs (mean over seeds, evaluated every {options.eval_every_epochs} epoch(s)):
![accuracy vs epochs]({name}.png)

Per run (final evaluation):

{per_run}

Command: `{command}`

Wall time: {total_wall / 60:.0f} minutes for all runs (training and evaluations),
on {platform.machine()} with {os.cpu_count()} CPU cores, JAX {jax.__version__}
({jax.default_backend()} backend), one run at a time.
"""


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
  jobs = common.grid(
      ["simvae"], lambda _, dataset, seed: f"{dataset}_seed{seed}"
  )
  finals, walls, histories = common.run_grid(
      jobs, lambda _, dataset, seed: make_config(dataset, seed)
  )
  finals, walls, histories = (
      finals["simvae"],
      walls["simvae"],
      histories["simvae"],
  )
  name = common.results_name()
  common.plot_curves(
      {dataset_name(d): h for d, h in histories.items()},
      {dataset_name(d): paper_accuracy("simvae", d) for d in histories},
      os.path.join(FLAGS.results, f"{name}.png"),
  )
  command = common.command_line()
  config = make_config(FLAGS.datasets[0], 0)
  report = write_report(finals, walls, FLAGS, config, command, name)
  common.write_report(name, report)


if __name__ == "__main__":
  define_flags()
  common.run_script(main)
