"""Report tables as pure functions of the jobs' results (eval.json dicts
per method, dataset and seed), tested in process; the scripts compose them.
"""

from __future__ import annotations

import runs
from paper import dataset_name, paper_cell

# Accuracies of Table 1's columns, in order.
METRICS = ("mlp_probe_acc", "knn_acc", "linear_probe_acc", "gmm_acc")


def fid_table(finals: dict, method_names: list, datasets: list) -> str:
  """FID of samples and reconstructions, mean ± s.e. over seeds ("—" where
  not measured, e.g. samples of discriminative methods)."""
  cell = lambda results, key: (
      runs.format_mean_error([r["fid"][key] for r in results], scale=1.0)
      if all(key in (r.get("fid") or {}) for r in results)
      else "—"
  )
  whats = ("samples", "reconstructions")
  return runs.markdown_table(
      ["method"]
      + [f"{dataset_name(d)} FID {what}" for d in datasets for what in whats],
      [
          [method]
          + [cell(finals[method][d], key) for d in datasets for key in whats]
          for method in method_names
      ],
  )


def accuracy_table(finals: dict, method_names: list, datasets: list) -> str:
  """Per method and dataset: MP, kNN, linear and GMM accuracy (%, mean ±
  s.e. over seeds) and the paper's MP / kNN."""
  columns = ("MP", "KNN", "linear", "GMM", "paper MP / KNN")
  rows = []
  for method in method_names:
    cells = [method]
    for dataset in datasets:
      results = finals[method][dataset]
      cells += [
          runs.format_mean_error([r["label"][m] for r in results])
          for m in METRICS
      ]
      cells.append(paper_cell(method, dataset))
    rows.append(cells)
  header = ["method"] + [
      f"{dataset_name(d)} {c}" for d in datasets for c in columns
  ]
  return runs.markdown_table(header, rows)


def cost_table(
    finals: dict, walls: dict, method_names: list, datasets: list
) -> str:
  """Per method and dataset: reconstruction MSE and wall minutes per job
  (mean ± s.e. over seeds)."""
  rows = []
  for method in method_names:
    cells = [method]
    for d in datasets:
      cells += [
          runs.format_mean_error(
              [r["label"]["recon_mse"] for r in finals[method][d]],
              scale=1.0,
              digits=4,
          ),
          runs.format_mean_error([w / 60 for w in walls[method][d]], scale=1.0),
      ]
    rows.append(cells)
  header = ["method"] + [
      f"{dataset_name(d)} {what}"
      for d in datasets
      for what in ("recon MSE", "wall (min)")
  ]
  return runs.markdown_table(header, rows)
