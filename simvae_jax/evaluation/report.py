"""The one place an evaluation's results are written (process 0 only):
``eval.json`` (the latest), ``eval_history.jsonl`` (every evaluation), the
metric writer (TensorBoard) and the console tables.

Results are ``{"step", "label": {...}, "tasks": {...}, "online": {...},
"fid": {...}, "untrained_encoder": {...}, "seconds": {...}}`` (each entry
only when its evaluator ran), the file contract the README describes.
"""

from __future__ import annotations

import json

from etils import epath

from simvae_jax import outputs

ONLINE_NOTE = (
    "online monitor: a linear classifier trained during the run on "
    "un-augmented batches' representations; not the offline protocol"
)
TABLE_COLUMNS = (
    "mlp_probe_acc",
    "linear_probe_acc",
    "knn_acc",
    "knn_k",
    "gmm_acc",
    "gmm_nmi",
    "gmm_ari",
    "recon_mse",
)
TASK_COLUMNS = ("mlp_probe_acc", "knn_acc", "majority_acc")


class Reporter:
  """Writes each evaluation of a run in ``workdir``; ``writer`` (optional)
  receives scalars; ``title`` heads the console table (e.g. 'the 10000
  cifar10 test images')."""

  def __init__(self, workdir: str, writer, title: str):
    self.workdir, self.writer, self.title = epath.Path(workdir), writer, title
    self.history = outputs.JsonLinesLog(
        str(self.workdir / "eval_history.jsonl")
    )

  def resume(self, step: int) -> None:
    """Drops history entries after ``step`` (logged by an interrupted run)."""
    self.history.drop_after(step)

  def write(self, results: dict, name: str) -> None:
    """Writes ``results`` of the representation called ``name`` (the console
    table's first row; the untrained encoder is the second)."""
    step = results["step"]
    (self.workdir / "eval.json").write_text(json.dumps(results, indent=2))
    self.history.write(step, {k: v for k, v in results.items() if k != "step"})
    if self.writer is not None:
      self.writer.write_scalars(step, scalars(results))
    print(console_text(results, name, self.title), flush=True)


def scalars(results: dict) -> dict:
  """The numbers for a metric writer: ``eval/<label metric>``,
  ``online/test_acc`` and ``eval/fid_<what>``."""
  numbers = {
      f"eval/{name}": value
      for name, value in results.get("label", {}).items()
      if isinstance(value, (int, float))
  }
  if "online" in results:
    numbers["online/test_acc"] = results["online"]["linear_probe_acc"]
  for name in ("reconstructions", "samples"):
    if name in (results.get("fid") or {}):
      numbers[f"eval/fid_{name}"] = results["fid"][name]
  return numbers


def console_text(results: dict, name: str, title: str) -> str:
  """The label table (and the untrained encoder's row), the further tasks'
  table and the online monitor's line."""
  rows = [[name, results.get("label", {})]]
  if "untrained_encoder" in results:
    rows.append(["untrained encoder", results["untrained_encoder"]["label"]])
  parts = [
      f"\nEvaluation on {title} (protocol in eval.json):\n"
      + outputs.format_table(
          ["representation", *TABLE_COLUMNS],
          [
              [n] + [label.get(c, "-") for c in TABLE_COLUMNS]
              for n, label in rows
          ],
      )
  ]
  if results.get("tasks"):
    parts.append(
        "Further tasks (eval.tasks):\n"
        + outputs.format_table(
            ["task", *TASK_COLUMNS],
            [
                [task] + [r[c] for c in TASK_COLUMNS]
                for task, r in results["tasks"].items()
            ],
        )
    )
  if "online" in results:
    parts.append(
        f"Online monitor, test accuracy "
        f"{results['online']['linear_probe_acc']:.4f} ({ONLINE_NOTE})"
    )
  return "\n".join(parts)
