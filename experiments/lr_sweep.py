"""Learning rate per method, chosen on the validation split.

python experiments/lr_sweep.py --methods=simclr,moco --learning_rates=1e-4,3e-4,1e-3 \
    --num_epochs=3 --num_views=4 --seeds=0

Every (method, learning rate, dataset, seed) trains with the shared setting of
``table1.py`` in ``--root/<method>/<dataset>_lr<lr>_seed<k>``. The learning rate
of each method and dataset is the one with the best mean *validation* MLP
probe accuracy (the probe's held-out part of train); only the chosen one's test
accuracy is reported, so the choice does not look at test. Writes
``experiments/results/lr_sweep.md``.
"""

from __future__ import annotations

import os
import platform

import jax
from absl import flags, logging

import common
from simvae_jax import runs
from simvae_jax.paper import DATASET_NAMES

common.define_flags(
    root="runs/lr_sweep", name="lr_sweep", datasets=("mnist",), num_epochs=3
)
common.define_method_flags()
FLAGS = common.FLAGS
FLAGS.set_default("methods", ["simclr", "moco"])
_RATES = flags.DEFINE_list(
    "learning_rates", ["1e-4", "3e-4", "1e-3"], "Learning rates to try."
)


def make_config(setting, dataset: str, seed: int):
  method, rate = setting
  config = common.method_config(method, dataset, seed)
  config.optimizer.learning_rate = rate
  return config


def run_all() -> tuple[dict, dict]:
  """({(method, dataset): {lr: [eval.json "label" per seed]}}, {(method,
  lr): {dataset: [wall seconds per seed]}})."""
  settings = [(m, r) for m in FLAGS.methods for r in map(float, _RATES.value)]
  finals, walls = common.run_jobs(
      settings,
      make_config,
      lambda setting, dataset, seed: (
          f"{setting[0]}/{dataset}_lr{setting[1]:g}_seed{seed}"
      ),
  )
  by_method = {}
  for (method, rate), per_dataset in finals.items():
    for dataset, results in per_dataset.items():
      by_method.setdefault((method, dataset), {})[rate] = [
          r["label"] for r in results
      ]
  return by_method, walls


def chosen_rate(per_rate: dict) -> float:
  """The learning rate with the best mean validation MLP probe accuracy."""
  return max(
      per_rate,
      key=lambda rate: runs.mean_and_error(
          [r["mlp_probe_val_acc"] for r in per_rate[rate]]
      )[0],
  )


def write_report(finals: dict, walls: dict, command: str) -> str:
  lines = [
      "| method | dataset | lr | val MP | val kNN | test MP | test kNN |",
      "|---|---|---|---|---|---|---|",
  ]
  for (method, dataset), per_rate in finals.items():
    best = chosen_rate(per_rate)
    for rate, results in per_rate.items():
      cell = lambda key: runs.format_mean_error([r[key] for r in results])
      test = (
          [f"**{cell('mlp_probe_acc')}**", f"**{cell('knn_acc')}**"]
          if rate == best
          else ["", ""]
      )
      lines.append(
          f"| {method} | {DATASET_NAMES[dataset]} | "
          f"{rate:g}{' (chosen)' if rate == best else ''} | "
          f"{cell('mlp_probe_val_acc')} | {cell('knn_val_acc')} | "
          + " | ".join(test)
          + " |"
      )
  config = common.method_config(FLAGS.methods[0], FLAGS.datasets[0], 0)
  return f"""# Learning rate per method ({FLAGS.num_epochs}-epoch schedule)

Accuracy (%) of frozen representations, mean ± standard error over seeds
{", ".join(FLAGS.seeds)}. "val" is the validation split the probe and kNN
hold out of train (10%); the learning rate with the best validation MLP probe
accuracy is chosen, and only its test accuracy is shown. Setting:
{FLAGS.num_epochs} epochs, {config.batch_size} images x J = {config.num_views} views, the
shared {runs.describe_setup(config)}; {config.optimizer.name} with each learning rate below.

{chr(10).join(lines)}

Command: `{command}`

Wall time: {sum(sum(w) for per in walls.values() for w in per.values()) / 60:.0f} minutes for all jobs, on {platform.machine()}
with {os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()} backend).
"""


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  finals, walls = run_all()
  name = common.results_name((".md",))
  common.write_report(name, write_report(finals, walls, common.command_line()))


if __name__ == "__main__":
  common.run_script(main)
