"""Style versus content (paper Fig. 5, middle; hypothesis H2): does
discriminative SSL discard style that SimVAE keeps?

python experiments/style_vs_content.py --num_epochs=3 --num_views=4 \
    --learning_rate=1e-3                                    # CPU schedule
python experiments/style_vs_content.py --datasets=cifar10 --variant=quick \
    --num_epochs=1 --seeds=0                                # CIFAR-10 on a CPU

Every method is trained with the same setting as ``table1.py`` and evaluated
on the content task (the label) and on the style tasks with known answers of
``simvae_jax/evaluation/style.py`` (flips, rotation, crop position and scale,
and for colour images hue and grayscale), each probed on the frozen
representations of transformed test images. Writes
``experiments/results/style_vs_content.md`` (per-task accuracies, the verdict
on H2 per dataset with its margin) and ``style_vs_content.png`` (content
accuracy against mean style accuracy per method, error bars over seeds).
``--root=runs/table1`` reuses Table 1's jobs (they are evaluated again, not
retrained).
"""

from __future__ import annotations

import os
import platform

import jax
import matplotlib.figure
import numpy as np
from absl import logging

import common
import reports
import runs
from simvae_jax import methods
from paper import dataset_name

FLAGS = common.FLAGS
# H2: SimVAE keeps style that discriminative SSL methods discard.
SSL_METHODS = methods.self_supervised()


def define_flags() -> None:
  common.define_flags(root="runs/style_vs_content", name="style_vs_content")
  common.define_method_flags()


def make_config(method: str, dataset: str, seed: int):
  config = common.method_config(method, dataset, seed)
  config.eval.tasks = ("style",)
  return config


def mean_error(values) -> tuple[float, float]:
  """Mean and standard error in percent (error 0 for a single value)."""
  mean, error = runs.mean_and_error(values)
  return 100 * mean, (0.0 if np.isnan(error) else 100 * error)


def summary(finals: dict, dataset: str, metric: str = "mlp_probe_acc"):
  """{method: ((content mean, s.e.), (style-mean mean, s.e.))} in percent."""
  return {
      method: (
          mean_error([r["label"][metric] for r in per[dataset]]),
          mean_error([r["tasks"]["style_mean"][metric] for r in per[dataset]]),
      )
      for method, per in finals.items()
  }


def verdict(finals: dict, dataset: str) -> str:
  """H2 on one dataset: SimVAE's mean style accuracy (MLP probe) against the
  best discriminative method's, with the margin and its standard error."""
  points = summary(finals, dataset)
  rivals = [m for m in points if m in SSL_METHODS]
  if "simvae" not in points or not rivals:
    return f"H2 not tested (needs simvae and one of {', '.join(SSL_METHODS)})."
  best = max(rivals, key=lambda m: points[m][1][0])
  (simvae, simvae_error), (rival, rival_error) = (
      points["simvae"][1],
      points[best][1],
  )
  margin, error = simvae - rival, float(np.hypot(simvae_error, rival_error))
  seeds = len(finals["simvae"][dataset])
  if seeds < 2:
    outcome = "holds" if margin > 0 else "does not hold"
    strength = "one seed, no standard error"
  elif abs(margin) <= 2 * error:
    outcome, strength = "is not resolved", "within 2 standard errors"
  else:
    outcome = "holds" if margin > 0 else "does not hold"
    strength = f"{abs(margin) / error:.1f} standard errors"
  content_margin = points["simvae"][0][0] - points[best][0][0]
  spread = f" ± {error:.1f}" if seeds > 1 else ""
  return (
      f"H2 {outcome}: SimVAE's mean style accuracy is {margin:+.1f}{spread} "
      f"points against the best discriminative SSL method ({best}; "
      f"{strength}); its content accuracy {content_margin:+.1f} points."
  )


def scatter(finals: dict, datasets: list, path: str) -> None:
  fig = matplotlib.figure.Figure(
      figsize=(4.5 * len(datasets), 4.2), layout="constrained"
  )
  axes = np.atleast_1d(fig.subplots(1, len(datasets)))
  for ax, dataset in zip(axes, datasets):
    for method, (content, style) in summary(finals, dataset).items():
      marker = "o" if method in SSL_METHODS else "s"
      ax.errorbar(
          content[0],
          style[0],
          xerr=content[1],
          yerr=style[1],
          fmt=marker,
          capsize=3,
          label=method,
      )
      ax.annotate(
          method,
          (content[0], style[0]),
          fontsize=7,
          xytext=(4, 4),
          textcoords="offset points",
      )
    ax.set_xlabel("content accuracy (MLP probe, %)")
    ax.set_ylabel("mean style accuracy (MLP probe, %)")
    ax.set_title(dataset_name(dataset))
    ax.grid(alpha=0.3)
  fig.savefig(path, dpi=120)


def write_report(
    finals: dict, walls: dict, options, config, command: str, name: str
) -> str:
  """The results file: ``options`` the script's flags, ``config`` a job's."""
  sections = "\n".join(f"""## {dataset_name(d)}

{verdict(finals, d)}

{reports.style_table(finals, options.methods, d)}
""" for d in options.datasets)
  total_wall = sum(sum(w) for per in walls.values() for w in per.values())
  return f"""# Style versus content (H2) ({options.num_epochs}-epoch schedule)

Top-1 test accuracy (%) of frozen representations, mean ± standard error over
seeds {", ".join(options.seeds)}; MP = MLP probe. Content is the label; each style
task transforms un-augmented images with a known answer (hflip, vflip: flipped
or not; rotation: 0/90/180/270 degrees; crop_position: which quadrant a zoomed
half-size crop shows; crop_scale: side 1, 0.75 or 0.5 of a zoomed centred crop;
colour images also hue: shift by 0, 1/4, 1/2, 3/4; grayscale: or not), drawn
uniformly per image, on the first {config.eval.style_max_examples} images of each
split ({", ".join(dataset_name(d) for d in options.datasets)}). Every task uses the content
task's protocol (MLP probe epoch and kNN k chosen on a validation split of train,
test once). H2 (the paper) predicts that SimVAE's style accuracy exceeds that
of the discriminative SSL methods ({", ".join(SSL_METHODS)}); the verdict
compares it with the best of them that was run.

Setting: {options.num_epochs} epochs, {config.batch_size} images x J = {config.num_views}
views, {config.optimizer.name} lr {config.optimizer.learning_rate:g}, for every method the
same {runs.describe_setup(config)}.

![content vs style]({name}.png)

{sections}
Command: `{command}`

Wall time: {total_wall / 60:.0f} minutes for all jobs (training and evaluation),
on {platform.machine()} with {os.cpu_count()} CPU cores, JAX {jax.__version__}
({jax.default_backend()} backend).
"""


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  finals, walls, _ = common.run_grid(common.method_grid(), make_config)
  name = common.results_name()
  scatter(finals, FLAGS.datasets, os.path.join(FLAGS.results, f"{name}.png"))
  config = make_config("simvae", FLAGS.datasets[0], 0)
  command = common.command_line()
  report = write_report(finals, walls, FLAGS, config, command, name)
  common.write_report(name, report)


if __name__ == "__main__":
  define_flags()
  common.run_script(main)
