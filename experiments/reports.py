"""Report tables as pure functions of the jobs' results (eval.json dicts
per method, dataset and seed), tested in process; the scripts compose them.
"""

from __future__ import annotations

import runs
from paper import dataset_name, paper_cell

# Accuracies of Table 1's columns, in order.
METRICS = ("mlp_probe_acc", "knn_acc", "linear_probe_acc", "gmm_acc")
# SimVAE's accuracy targets (%) on the digit datasets.
SIMVAE_TARGETS = {
    "mnist": {"mlp_probe_acc": 98.0, "knn_acc": 98.0},
    "fashion_mnist": {"mlp_probe_acc": 81.5, "knn_acc": 86.0},
}


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


def chosen_rate(per_rate: dict) -> float:
  """The learning rate with the best mean validation MLP probe accuracy
  (``per_rate``: {lr: [eval.json "label" per seed]})."""
  return max(
      per_rate,
      key=lambda rate: runs.mean_and_error(
          [r["mlp_probe_val_acc"] for r in per_rate[rate]]
      )[0],
  )


def _chosen_mark(rate: float, per_rate: dict) -> str:
  """' (chosen)', saying so when the rate is the grid's smallest or largest
  (the sweep should then go further)."""
  if len(per_rate) > 1 and rate in (min(per_rate), max(per_rate)):
    return " (chosen, at the edge of the grid)"
  return " (chosen)"


def sweep_table(sweep: dict, show_test: bool) -> str:
  """One row per (method, dataset, lr) of ``sweep`` ({(method, dataset): {lr:
  [label results per seed]}}): validation MP / kNN, and test only for the
  chosen lr and only if ``show_test``."""
  rows = []
  for (method, dataset), per_rate in sweep.items():
    best = chosen_rate(per_rate)
    for rate, results in per_rate.items():
      cell = lambda key: runs.format_mean_error([r[key] for r in results])
      test = ["", ""]
      if rate == best and show_test:
        test = [f"**{cell('mlp_probe_acc')}**", f"**{cell('knn_acc')}**"]
      mark = _chosen_mark(rate, per_rate) if rate == best else ""
      rows.append(
          [
              method,
              dataset_name(dataset),
              f"{rate:g}{mark}",
              cell("mlp_probe_val_acc"),
              cell("knn_val_acc"),
              *test,
          ]
      )
  header = ["method", "dataset", "lr", "val MP", "val kNN"]
  return runs.markdown_table(header + ["test MP", "test kNN"], rows)


def chosen_runs_table(finals: dict) -> str:
  """The chosen rates' long runs ({(method, dataset): {lr: [label results per
  seed]}}, one lr each) against the paper's Table 1."""
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
  header = ["method", "dataset", "lr", "val MP", "test MP", "test kNN"]
  header += ["test linear", "paper MP / kNN (400 epochs)"]
  return runs.markdown_table(header, rows)


def _targets_cell(dataset: str, results: list) -> str:
  """Which of the dataset's ``SIMVAE_TARGETS`` the mean over seeds meets."""
  parts = []
  for metric, target in SIMVAE_TARGETS.get(dataset, {}).items():
    mean = 100 * runs.mean_and_error([r["label"][metric] for r in results])[0]
    name = {"mlp_probe_acc": "MLP", "knn_acc": "kNN"}[metric]
    met = "met" if mean >= target else "not met"
    parts.append(f"{name} {met} (>= {target})")
  return ", ".join(parts) or "—"


def simvae_summary_table(finals: dict, datasets: list) -> str:
  """Per dataset ({dataset: [eval.json per seed]}): MP, linear, kNN and GMM
  accuracy (%, mean ± s.e.), the paper's MP / kNN and the targets met."""
  metrics = ("mlp_probe_acc", "linear_probe_acc", "knn_acc", "gmm_acc")
  rows = [
      [dataset_name(dataset)]
      + [
          runs.format_mean_error([r["label"][m] for r in finals[dataset]])
          for m in metrics
      ]
      + [paper_cell("simvae", dataset), _targets_cell(dataset, finals[dataset])]
      for dataset in datasets
  ]
  header = ["dataset", "MLP probe", "linear probe", "kNN", "GMM"]
  return runs.markdown_table(
      header + ["paper MP / KNN (400 epochs)", "targets"], rows
  )


def per_run_table(finals: dict, walls: dict, datasets: list, seeds) -> str:
  """One row per dataset and seed ({dataset: [eval.json per seed]}, walls in
  seconds the same): accuracies (%), k, probe epoch, recon MSE, wall minutes."""
  metrics = ("mlp_probe_acc", "linear_probe_acc", "knn_acc", "gmm_acc")
  rows = [
      [dataset_name(d), seed]
      + [f"{100 * r['label'][m]:.2f}" for m in metrics]
      + [
          r["label"]["knn_k"],
          r["label"]["mlp_probe_epoch"],
          f"{r['label']['recon_mse']:.4f}",
          f"{wall / 60:.1f}",
      ]
      for d in datasets
      for seed, r, wall in zip(seeds, finals[d], walls[d])
  ]
  header = ["dataset", "seed", "MLP probe", "linear probe", "kNN", "GMM"]
  header += ["k", "probe epoch", "recon MSE", "wall (min)"]
  return runs.markdown_table(header, rows)
