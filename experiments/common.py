"""Flags every experiment script shares (data, seeds, schedule, outputs).

Scripts call ``define_flags(root=..., name=...)`` once at import, with their
own defaults, and read the values from ``FLAGS``.
"""

from __future__ import annotations

import os

from absl import flags

FLAGS = flags.FLAGS


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


def write_report(name: str, report: str) -> None:
  """Writes ``<results>/<name>.md``, prints it and where it went."""
  path = os.path.join(FLAGS.results, f"{name}.md")
  with open(path, "w") as file:
    file.write(report)
  print(report)
  print(f"Wrote {path}")
