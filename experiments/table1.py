"""Paper Table 1 for MNIST and Fashion-MNIST: every method x dataset x seed.

python experiments/table1.py --num_epochs=3 --num_views=4 --learning_rate=1e-3 \
    --notes=experiments/results/table1_mnist_fmnist_notes.md      # CPU schedule
python experiments/table1.py --num_epochs=400                      # paper schedule (GPU)

Every method uses the same config (augmentations, batch, J, representation
size, encoder and decoder) except its own hyperparameters, which the results
file lists. Jobs live in ``--root/<method>/<dataset>_seed<k>``; finished jobs
are skipped and interrupted ones resume. Writes
``experiments/results/table1_mnist_fmnist.md`` and ``..._reconstructions.png``
(the same test images reconstructed by every method, seed 0).
"""

from __future__ import annotations

import os
import platform

import jax
import matplotlib.figure
import numpy as np
from absl import flags, logging

import common
import paper
import reports
import runs
from simvae_jax import methods, outputs
from paper import dataset_name

FLAGS = common.FLAGS


def define_flags() -> None:
  common.define_flags(root="runs/table1", name="table1_mnist_fmnist")
  common.define_method_flags()
  flags.DEFINE_bool(
      "fid",
      False,
      "Also report FID of samples and reconstructions (the final "
      "evaluation; finished jobs are evaluated again, not retrained).",
  )
  flags.DEFINE_string(
      "fid_cache_dir",
      "",
      "Where FID's offline classifiers are cached ('' keeps the config's).",
  )
  flags.DEFINE_string(
      "notes",
      "",
      "Markdown file appended to the report (the discussion of the "
      "numbers), so that it survives regeneration.",
  )


def make_config(method: str, dataset: str, seed: int):
  config = common.method_config(method, dataset, seed)
  config.fid.enabled = FLAGS.fid
  if FLAGS.fid_cache_dir:
    config.fid.cache_dir = FLAGS.fid_cache_dir
  return config


def grid_figure(path: str, rows_of) -> None:
  """One panel per dataset; ``rows_of(dataset)`` gives its (label, images
  [n, H, W, C]) rows, drawn as a grid."""
  panels = {dataset: rows_of(dataset) for dataset in FLAGS.datasets}
  grids = {
      dataset: np.clip(outputs.image_grid([images for _, images in rows]), 0, 1)
      for dataset, rows in panels.items()
  }
  width = 8.0  # inches; each panel's height follows its grid's aspect
  fig = matplotlib.figure.Figure(
      figsize=(
          width,
          sum(width * g.shape[0] / g.shape[1] + 0.5 for g in grids.values()),
      ),
      layout="constrained",
  )
  axes = np.atleast_1d(fig.subplots(len(panels), 1))
  for ax, (dataset, rows) in zip(axes, panels.items()):
    grid = grids[dataset]
    if grid.shape[-1] == 1:
      ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
      ax.imshow(grid)
    height = rows[0][1].shape[1]
    ax.set_yticks(
        [height * (i + 0.5) for i in range(len(rows))],
        [label for label, _ in rows],
        fontsize=7,
    )
    ax.set_xticks([])
    ax.set_title(dataset_name(dataset))
  fig.savefig(path, dpi=120)


def job_file(method: str, dataset: str, name: str):
  """An array file of the first seed's job."""
  return np.load(
      os.path.join(FLAGS.root, method, f"{dataset}_seed{FLAGS.seeds[0]}", name)
  )


def reconstruction_rows(dataset: str) -> list:
  """The same test images, then each method's reconstructions of them."""
  arrays = [job_file(m, dataset, "reconstructions.npz") for m in FLAGS.methods]
  return [("test images", arrays[0]["originals"])] + [
      (m, a["reconstructions"]) for m, a in zip(FLAGS.methods, arrays)
  ]


def sample_rows(dataset: str) -> list:
  """Each generative method's first 16 prior samples."""
  return [
      (m, job_file(m, dataset, "samples.npz")["samples"][:16])
      for m in FLAGS.methods
      if m in methods.generative()
  ]


def fid_report(finals: dict, method_names: list, datasets: list) -> str:
  """``fid_table`` with what it measured, if FID was measured."""
  measured = [
      r["fid"]
      for per in finals.values()
      for rs in per.values()
      for r in rs
      if r.get("fid")
  ]
  if not measured:
    return ""
  features = sorted({m["features"] for m in measured})
  return f"""
FID against the first {measured[0]["num_images"]} test images (lower is better;
features: {", ".join(features)}{"" if measured[0]["comparable_to_inception_fid"] else
", a classifier trained on each dataset's labels: these FIDs compare the methods with each other and are not comparable with published Inception FIDs"}).
Samples are decoded prior draws (generative methods only); reconstructions
decode the representations of those test images (discriminative methods:
through their post-hoc decoder).

{reports.fid_table(finals, method_names, datasets)}
"""


def samples_line(method_names: list, name: str) -> str:
  if not any(m in methods.generative() for m in method_names):
    return ""
  return (
      "\nPrior samples of the generative methods (first seed):\n\n"
      f"![samples]({name}_samples.png)\n"
  )


def write_report(
    finals: dict, walls: dict, options, config, command: str, name: str
) -> str:
  """The results file: ``options`` the script's flags, ``config`` a job's
  (its method sections give every method's hyperparameters)."""
  hyper = "\n".join(
      f"- {m}: {config[m].to_dict()}"
      for m in options.methods
      if methods.spec(m).defaults
  )
  total_wall = sum(
      sum(w) for per_dataset in walls.values() for w in per_dataset.values()
  )
  names = " and ".join(dataset_name(d) for d in options.datasets)
  return f"""# Table 1 on {names} ({options.num_epochs}-epoch schedule)

Top-1 test accuracy (%) of frozen representations, mean ± standard error over
seeds {", ".join(options.seeds)}; MP = MLP probe. **Schedule: {options.num_epochs} epochs**
(the paper: 400), {config.batch_size} images x J = {config.num_views} views per step,
{config.optimizer.name} lr {config.optimizer.learning_rate:g}, and for every method
the same {runs.describe_setup(config)}; discriminative methods add a head
{tuple(config.model.head_hidden)} -> {config.model.head_dim} and get a decoder trained
for {config.posthoc_decoder.num_steps} steps on their frozen representations.

{reports.accuracy_table(finals, options.methods, options.datasets)}

Protocol: {finals[options.methods[0]][options.datasets[0]][0]["label"]["protocol"]}.

Means more than 1 point away from the paper's numbers (400 epochs, J = 10, best
test accuracy over epochs and k):

{chr(10).join(paper.gaps_over(finals)) or "- none"}

{fid_report(finals, options.methods, options.datasets)}
Reconstruction MSE per pixel on un-augmented test images (decoders of
discriminative methods trained afterwards on frozen representations) and wall
time per job (training, post-hoc decoder and evaluation):

{reports.cost_table(finals, walls, options.methods, options.datasets)}

![reconstructions]({name}_reconstructions.png)
{samples_line(options.methods, name)}
Method hyperparameters:
{hyper}

Command: `{command}`

Wall time: {total_wall / 60:.0f} minutes for all jobs, on {platform.machine()} with
{os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()} backend).
"""


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  finals, walls, _ = common.run_grid(common.method_grid(), make_config)
  name = common.results_name((".md", "_reconstructions.png", "_samples.png"))
  grid_figure(
      os.path.join(FLAGS.results, f"{name}_reconstructions.png"),
      reconstruction_rows,
  )
  if any(m in methods.generative() for m in FLAGS.methods):
    grid_figure(os.path.join(FLAGS.results, f"{name}_samples.png"), sample_rows)
  config = make_config("simvae", FLAGS.datasets[0], 0)
  command = common.command_line()
  report = write_report(finals, walls, FLAGS, config, command, name)
  if FLAGS.notes:
    with open(FLAGS.notes) as file:
      report += "\n" + file.read()
  common.write_report(name, report)


if __name__ == "__main__":
  define_flags()
  common.run_script(main)
