"""Learning rate per method, chosen on the validation split.

python experiments/lr_sweep.py --methods=simclr,moco --learning_rates=1e-4,3e-4,1e-3 \
    --num_epochs=3 --num_views=4 --seeds=0

Every (method, learning rate, dataset, seed) trains with the shared setting of
``table1.py`` in ``--root/<method>/<dataset>_lr<lr>_seed<k>``. The learning rate
of each method and dataset is the one with the best mean *validation* MLP
probe accuracy (the probe's held-out part of train); only the chosen one's test
accuracy is reported, so the choice does not look at test. Writes
``experiments/results/lr_sweep.md``.

With ``--final_num_epochs=N`` the sweep is a short pilot: each method's chosen
rate is then trained for N epochs (in ``.../<dataset>_lr<lr>_seed<k>_<N>epochs``,
evaluated every ``--eval_every_epochs``), and test accuracy is reported for
those long runs only, with their accuracy curve in ``lr_sweep.png``.
"""

from __future__ import annotations

import os
import platform

import jax
from absl import flags, logging

import common
import reports
import runs
from paper import dataset_name, paper_accuracy

FLAGS = common.FLAGS


def define_flags() -> None:
  common.define_flags(
      root="runs/lr_sweep", name="lr_sweep", datasets=("mnist",), num_epochs=3
  )
  common.define_method_flags()
  FLAGS.set_default("methods", ["simclr", "moco"])
  flags.DEFINE_list(
      "learning_rates", ["1e-4", "3e-4", "1e-3"], "Learning rates to try."
  )
  flags.DEFINE_integer(
      "final_num_epochs",
      0,
      "Then train each method's chosen rate for this many epochs and report "
      "test for those runs only (0: report the sweep's own test accuracy).",
  )
  common.define_eval_every_flag(default=0)


def make_config(setting, dataset: str, seed: int):
  method, rate = setting
  config = common.method_config(method, dataset, seed)
  config.optimizer.learning_rate = rate
  return config


def make_final_config(setting, dataset: str, seed: int):
  config = make_config(setting, dataset, seed)
  config.num_epochs = FLAGS.final_num_epochs
  return common.evaluate_every_epochs(config, FLAGS.eval_every_epochs)


def job_name(setting, dataset: str, seed: int) -> str:
  method, rate = setting
  return f"{method}/{dataset}_lr{rate:g}_seed{seed}"


def run_sweep() -> tuple[dict, dict]:
  """({(method, dataset): {lr: [eval.json "label" per seed]}}, {(method,
  lr): {dataset: [wall seconds per seed]}})."""
  settings = [
      (m, r) for m in FLAGS.methods for r in map(float, FLAGS.learning_rates)
  ]
  jobs = common.grid(settings, job_name)
  finals, walls, _ = common.run_grid(jobs, make_config)
  return reports.by_method_and_dataset(finals), walls


def final_grid(sweep: dict) -> list[runs.Job]:
  """Each (method, dataset)'s chosen rate, trained for --final_num_epochs."""
  name = lambda *job: f"{job_name(*job)}_{FLAGS.final_num_epochs}epochs"
  return [
      job
      for (method, dataset), per_rate in sweep.items()
      for job in common.grid(
          [(method, reports.chosen_rate(per_rate))], name, datasets=[dataset]
      )
  ]


def run_final(sweep: dict) -> tuple[dict, dict, dict]:
  """Returns ({(method, dataset): {chosen lr: [eval.json "label" per seed]}},
  {(method, lr): {dataset: [wall seconds per seed]}}, {(method, dataset):
  [eval history per seed]})."""
  finals, walls, histories = common.run_grid(
      final_grid(sweep), make_final_config
  )
  return (
      reports.by_method_and_dataset(finals),
      walls,
      {
          (method, dataset): history
          for (method, _), per_dataset in histories.items()
          for dataset, history in per_dataset.items()
      },
  )


def final_section(finals: dict, options, config, name: str) -> str:
  """The long runs of the chosen rates against the paper's Table 1
  (``config``: one of their configs)."""
  table = reports.chosen_runs_table(finals)
  return f"""
## The chosen rates trained for {options.final_num_epochs} epochs

Each method's chosen rate above, trained again from scratch for
{options.final_num_epochs} epochs ({common.describe_optimizer(config)}); the only
test numbers of this file.

{table}

Test accuracy against epochs (evaluated every {options.eval_every_epochs} epoch(s); dashed: the paper):
![accuracy vs epochs]({name}.png)
"""


def write_report(
    sweep: dict,
    finals: dict,
    walls: dict,
    options,
    configs: tuple,
    command: str,
    name: str,
) -> str:
  """The results file: ``options`` the script's flags, ``configs`` a sweep
  job's config and a long run's (None without long runs)."""
  config, final_config = configs
  return f"""# Learning rate per method ({options.num_epochs}-epoch {"pilot" if finals else "schedule"})

Accuracy (%) of frozen representations, mean ± standard error over seeds
{", ".join(options.seeds)}. "val" is the validation split the probe and kNN
hold out of train (10%); the learning rate with the best validation MLP probe
accuracy is chosen, and only {"the long run of the chosen rate (below) is tested" if finals else "its test accuracy is shown"}. Setting:
{options.num_epochs} epochs, {config.batch_size} images x J = {config.num_views} views, the
shared {runs.describe_setup(config)}; {common.describe_optimizer(config, with_rate=False)}, with each learning rate below.

{reports.sweep_table(sweep, show_test=not finals)}
{final_section(finals, options, final_config, name) if finals else ""}
Command: `{command}`

Wall time: {sum(sum(w) for per in walls.values() for w in per.values()) / 60:.0f} minutes for all jobs, on {platform.machine()}
with {os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()} backend).
"""


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  sweep, walls = run_sweep()
  finals, histories = {}, {}
  if FLAGS.final_num_epochs:
    finals, final_walls, histories = run_final(sweep)
    for setting, per_dataset in final_walls.items():
      for dataset, seconds in per_dataset.items():
        walls.setdefault(setting, {}).setdefault(dataset, []).extend(seconds)
  name = common.results_name((".md", ".png") if finals else (".md",))
  if finals:
    titles = {
        key: f"{key[0]}, {dataset_name(key[1])} (lr {rate:g})"
        for key, per_rate in finals.items()
        for rate in per_rate
    }
    common.plot_curves(
        {titles[key]: h for key, h in histories.items()},
        {titles[key]: paper_accuracy(*key) for key in histories},
        os.path.join(FLAGS.results, f"{name}.png"),
    )
  config = common.method_config(FLAGS.methods[0], FLAGS.datasets[0], 0)
  final_config = None
  if finals:
    (method, dataset), per_rate = next(iter(finals.items()))
    final_config = make_final_config((method, next(iter(per_rate))), dataset, 0)
  command = common.command_line()
  configs = (config, final_config)
  common.write_report(
      name,
      write_report(sweep, finals, walls, FLAGS, configs, command, name),
  )


if __name__ == "__main__":
  define_flags()
  common.run_script(main)
