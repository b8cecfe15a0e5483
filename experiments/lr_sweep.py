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
import runs
from paper import dataset_name, paper_accuracy, paper_cell

common.define_flags(
    root="runs/lr_sweep", name="lr_sweep", datasets=("mnist",), num_epochs=3
)
common.define_method_flags()
FLAGS = common.FLAGS
FLAGS.set_default("methods", ["simclr", "moco"])
_RATES = flags.DEFINE_list(
    "learning_rates", ["1e-4", "3e-4", "1e-3"], "Learning rates to try."
)
_FINAL_EPOCHS = flags.DEFINE_integer(
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
  config.num_epochs = _FINAL_EPOCHS.value
  return common.evaluate_every_epochs(config, FLAGS.eval_every_epochs)


def by_method_and_dataset(finals: dict) -> dict:
  """{(method, lr): {dataset: [eval.json]}} -> {(method, dataset): {lr:
  [eval.json "label" per seed]}}."""
  by_method = {}
  for (method, rate), per_dataset in finals.items():
    for dataset, results in per_dataset.items():
      by_method.setdefault((method, dataset), {})[rate] = [
          r["label"] for r in results
      ]
  return by_method


def job_name(setting, dataset: str, seed: int) -> str:
  method, rate = setting
  return f"{method}/{dataset}_lr{rate:g}_seed{seed}"


def run_sweep() -> tuple[dict, dict]:
  """({(method, dataset): {lr: [eval.json "label" per seed]}}, {(method,
  lr): {dataset: [wall seconds per seed]}})."""
  settings = [(m, r) for m in FLAGS.methods for r in map(float, _RATES.value)]
  finals, walls, _ = common.run_jobs(settings, make_config, job_name)
  return by_method_and_dataset(finals), walls


def run_final(sweep: dict) -> tuple[dict, dict, dict]:
  """Each (method, dataset)'s chosen rate trained for --final_num_epochs.

  Returns ({(method, dataset): {lr: [eval.json "label" per seed]}} with the
  chosen lr only, {(method, lr): {dataset: [wall seconds per seed]}},
  {(method, dataset): [eval history per seed]}).
  """
  finals, walls, histories = {}, {}, {}
  for (method, dataset), per_rate in sweep.items():
    setting = (method, chosen_rate(per_rate))
    final, wall, history = common.run_jobs(
        [setting],
        make_final_config,
        lambda *job: f"{job_name(*job)}_{_FINAL_EPOCHS.value}epochs",
        datasets=[dataset],
    )
    finals[method, dataset] = {
        setting[1]: [r["label"] for r in final[setting][dataset]]
    }
    walls.setdefault(setting, {})[dataset] = wall[setting][dataset]
    histories[method, dataset] = history[setting][dataset]
  return finals, walls, histories


def chosen_rate(per_rate: dict) -> float:
  """The learning rate with the best mean validation MLP probe accuracy."""
  return max(
      per_rate,
      key=lambda rate: runs.mean_and_error(
          [r["mlp_probe_val_acc"] for r in per_rate[rate]]
      )[0],
  )


def chosen_mark(rate: float, per_rate: dict) -> str:
  """' (chosen)', saying so when the rate is the grid's smallest or largest
  (the sweep should then go further)."""
  if len(per_rate) > 1 and rate in (min(per_rate), max(per_rate)):
    return " (chosen, at the edge of the grid)"
  return " (chosen)"


def sweep_table(sweep: dict, show_test: bool) -> str:
  """One row per (method, dataset, lr); test only for the chosen lr and only
  if ``show_test``."""
  rows = []
  for (method, dataset), per_rate in sweep.items():
    best = chosen_rate(per_rate)
    for rate, results in per_rate.items():
      cell = lambda key: runs.format_mean_error([r[key] for r in results])
      test = (
          [f"**{cell('mlp_probe_acc')}**", f"**{cell('knn_acc')}**"]
          if rate == best and show_test
          else ["", ""]
      )
      rows.append(
          [
              method,
              dataset_name(dataset),
              f"{rate:g}{chosen_mark(rate, per_rate) if rate == best else ''}",
              cell("mlp_probe_val_acc"),
              cell("knn_val_acc"),
              *test,
          ]
      )
  header = [
      "method",
      "dataset",
      "lr",
      "val MP",
      "val kNN",
      "test MP",
      "test kNN",
  ]
  return runs.markdown_table(header, rows)


def final_section(finals: dict, name: str) -> str:
  """The long runs of the chosen rates against the paper's Table 1."""
  rows = []
  for (method, dataset), per_rate in finals.items():
    ((rate, results),) = per_rate.items()
    cell = lambda key: runs.format_mean_error([r[key] for r in results])
    rows.append(
        [
            method,
            dataset_name(dataset),
            f"{rate:g}",
            cell("mlp_probe_val_acc"),
            f"**{cell('mlp_probe_acc')}**",
            f"**{cell('knn_acc')}**",
            cell("linear_probe_acc"),
            paper_cell(method, dataset),
        ]
    )
  header = [
      "method",
      "dataset",
      "lr",
      "val MP",
      "test MP",
      "test kNN",
      "test linear",
      "paper MP / kNN (400 epochs)",
  ]
  table = runs.markdown_table(header, rows)
  (method, dataset), per_rate = next(iter(finals.items()))
  config = make_final_config((method, next(iter(per_rate))), dataset, 0)
  return f"""
## The chosen rates trained for {_FINAL_EPOCHS.value} epochs

Each method's chosen rate above, trained again from scratch for
{_FINAL_EPOCHS.value} epochs ({common.describe_optimizer(config)}); the only
test numbers of this file.

{table}

Test accuracy against epochs (evaluated every {FLAGS.eval_every_epochs} epoch(s); dashed: the paper):
![accuracy vs epochs]({name}.png)
"""


def write_report(
    sweep: dict, finals: dict, walls: dict, command: str, name: str
) -> str:
  config = common.method_config(FLAGS.methods[0], FLAGS.datasets[0], 0)
  return f"""# Learning rate per method ({FLAGS.num_epochs}-epoch {"pilot" if finals else "schedule"})

Accuracy (%) of frozen representations, mean ± standard error over seeds
{", ".join(FLAGS.seeds)}. "val" is the validation split the probe and kNN
hold out of train (10%); the learning rate with the best validation MLP probe
accuracy is chosen, and only {"the long run of the chosen rate (below) is tested" if finals else "its test accuracy is shown"}. Setting:
{FLAGS.num_epochs} epochs, {config.batch_size} images x J = {config.num_views} views, the
shared {runs.describe_setup(config)}; {common.describe_optimizer(config, with_rate=False)}, with each learning rate below.

{sweep_table(sweep, show_test=not finals)}
{final_section(finals, name) if finals else ""}
Command: `{command}`

Wall time: {sum(sum(w) for per in walls.values() for w in per.values()) / 60:.0f} minutes for all jobs, on {platform.machine()}
with {os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()} backend).
"""


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  sweep, walls = run_sweep()
  finals, histories = {}, {}
  if _FINAL_EPOCHS.value:
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
  common.write_report(
      name,
      write_report(sweep, finals, walls, common.command_line(), name),
  )


if __name__ == "__main__":
  common.run_script(main)
