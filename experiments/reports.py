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


def views_table(
    finals: dict, walls: dict, settings: list, datasets: list
) -> str:
  """Per (method, J) setting and dataset: MP, kNN (%) and wall minutes per
  job, mean ± s.e. over seeds."""
  header = ["method", "J"] + [
      f"{dataset_name(d)} {what}"
      for d in datasets
      for what in ("MP", "kNN", "wall (min)")
  ]
  rows = []
  for setting in settings:
    cells = list(setting)
    for dataset in datasets:
      results = finals[setting][dataset]
      cells += [
          runs.format_mean_error([r["label"][m] for r in results])
          for m in ("mlp_probe_acc", "knn_acc")
      ]
      cells.append(
          runs.format_mean_error(
              [w / 60 for w in walls[setting][dataset]], scale=1.0
          )
      )
    rows.append(cells)
  return runs.markdown_table(header, rows)


def style_table(finals: dict, method_names: list, dataset: str) -> str:
  """Per method: content MP / kNN, the style tasks' mean MP / kNN and each
  style task's MP (%, mean ± s.e. over seeds), then the majority baseline."""
  names = sorted(
      k
      for k in finals[method_names[0]][dataset][0]["tasks"]
      if k.startswith("style/")
  )
  short = [n.split("/", 1)[1] for n in names]
  header = [
      "method",
      "content MP",
      "content kNN",
      "style mean MP",
      "style mean kNN",
      *short,
  ]
  rows = []
  cell = lambda values: runs.format_mean_error(values)
  for method in method_names:
    results = finals[method][dataset]
    cells = [
        method,
        cell([r["label"]["mlp_probe_acc"] for r in results]),
        cell([r["label"]["knn_acc"] for r in results]),
        cell([r["tasks"]["style_mean"]["mlp_probe_acc"] for r in results]),
        cell([r["tasks"]["style_mean"]["knn_acc"] for r in results]),
        *(
            cell([r["tasks"][n]["mlp_probe_acc"] for r in results])
            for n in names
        ),
    ]
    rows.append(cells)
  chance = finals[method_names[0]][dataset][0]["tasks"]
  rows.append(
      [
          "majority baseline",
          "",
          "",
          cell([chance["style_mean"]["majority_acc"]]),
          "",
      ]
      + [cell([chance[n]["majority_acc"]]) for n in names]
  )
  return runs.markdown_table(header, rows)
