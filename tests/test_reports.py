"""The experiments' reports from hand-made results, in process: the pure
tables of ``reports.py`` and every script's results file (the scripts define
their flags only when run as programs, and their report functions take the
flags and configs as arguments)."""

import types

import ablation_j
import lr_sweep
import reports
import runs
import simvae_mnist_fmnist
import style_vs_content
import table1
from simvae_jax import configs

LABEL_KEYS = (
    "mlp_probe_acc",
    "knn_acc",
    "linear_probe_acc",
    "gmm_acc",
    "mlp_probe_val_acc",
    "knn_val_acc",
)


def final(acc: float, style: float = 0.5) -> dict:
  """An eval.json with every metric the reports read at ``acc``."""
  label = dict.fromkeys(LABEL_KEYS, acc)
  label.update(recon_mse=0.02, knn_k=5, mlp_probe_epoch=7, protocol="P")
  style_task = {"mlp_probe_acc": style, "knn_acc": style, "majority_acc": 0.5}
  return {
      "label": label,
      "tasks": {"style_mean": style_task, "style/hflip": style_task},
  }


def options(**fields) -> types.SimpleNamespace:
  defaults = dict(
      datasets=["mnist"],
      seeds=["0", "1"],
      num_epochs=3,
      variant="quick",
      eval_every_epochs=1,
      final_num_epochs=0,
  )
  return types.SimpleNamespace(**{**defaults, **fields})


CONFIG = configs.load("mnist", "quick")


def test_table1_report():
  finals = {
      m: {"mnist": [final(0.9), final(0.92)]} for m in ("simclr", "simvae")
  }
  walls = {m: {"mnist": [60.0, 60.0]} for m in finals}
  report = table1.write_report(
      finals,
      walls,
      options(methods=["simclr", "simvae"]),
      CONFIG,
      "python table1.py",
      "t1",
  )
  assert report.startswith("# Table 1 on MNIST (3-epoch schedule)")
  assert "| simclr | 91.0 ± 1.0 | 91.0 ± 1.0 |" in report
  assert "![samples](t1_samples.png)" in report  # simvae is generative
  assert "- simvae: {" in report and "Command: `python table1.py`" in report


def test_ablation_j_report():
  settings = ablation_j.settings(
      options(methods=["simvae", "simclr"], views=["1", "2"])
  )
  assert settings == [("simvae", 1), ("simvae", 2), ("simclr", 2)]
  finals = {s: {"mnist": [final(0.8), final(0.9)]} for s in settings}
  walls = {s: {"mnist": [120.0, 60.0]} for s in settings}
  report = ablation_j.write_report(
      finals,
      walls,
      options(methods=["simvae", "simclr"], views=["1", "2"]),
      CONFIG,
      "c",
      "a",
  )
  assert "| simclr | 2 | 85.0 ± 5.0 | 85.0 ± 5.0 | 1.5 ± 0.5 |" in report
  assert "seeds 0, 1" in report and "| simclr | 1 |" not in report


def test_style_vs_content_report_gives_the_verdict_on_h2():
  finals = {
      "simclr": {"mnist": [final(0.95, 0.60), final(0.95, 0.62)]},
      "simvae": {"mnist": [final(0.90, 0.80), final(0.90, 0.82)]},
  }
  walls = {m: {"mnist": [1.0, 1.0]} for m in finals}
  report = style_vs_content.write_report(
      finals, walls, options(methods=["simclr", "simvae"]), CONFIG, "c", "s"
  )
  assert (
      "H2 holds: SimVAE's mean style accuracy is +20.0 ± 1.4 points" in report
  )
  assert "(simclr; 14.1 standard errors); its content accuracy -5.0" in report
  assert "| majority baseline |" in report


def test_lr_sweep_report_tests_only_the_chosen_rate():
  sweep = {("simclr", "mnist"): {1e-3: [final(0.9)["label"]]}}
  walls = {("simclr", 1e-3): {"mnist": [60.0]}}
  args = (options(methods=["simclr"], seeds=["0"]), (CONFIG, None), "c", "lr")
  report = lr_sweep.write_report(sweep, {}, walls, *args)
  assert "(3-epoch schedule)" in report and "**90.0**" in report
  pilot = lr_sweep.write_report(
      sweep,
      sweep,
      walls,
      options(methods=["simclr"], seeds=["0"], final_num_epochs=20),
      (CONFIG, CONFIG),
      "c",
      "lr",
  )
  assert "(3-epoch pilot)" in pilot
  assert "## The chosen rates trained for 20 epochs" in pilot
  # Test accuracy once: in the long runs' table, not in the sweep's.
  assert (
      pilot.count("**90.0**") == 2 and "![accuracy vs epochs](lr.png)" in pilot
  )


def test_simvae_report_states_the_schedule_and_targets():
  finals = {"mnist": [final(0.985), final(0.975)]}
  report = simvae_mnist_fmnist.write_report(
      finals, {"mnist": [60.0, 120.0]}, options(), CONFIG, "c", "sv"
  )
  assert "**Schedule: 3 epochs**" in report
  assert "`configs/<dataset>.py:quick`" in report
  assert "MLP met (>= 98.0), kNN met (>= 98.0)" in report
  assert "| MNIST | 1 | 97.50 |" in report


def test_markdown_table_is_one_helper_for_every_report():
  assert runs.markdown_table(["a", "b"], [[1, "x"], [2.5, ""]]) == (
      "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 |  |"
  )


def test_the_sweep_and_simvae_tables_are_pure_functions_of_the_results():
  def label(val, test):
    return {
        "mlp_probe_val_acc": val,
        "knn_val_acc": val,
        "mlp_probe_acc": test,
        "knn_acc": test,
        "linear_probe_acc": test,
    }

  finals = {
      ("simclr", 1e-3): {"mnist": [{"label": label(0.90, 0.80)}]},
      ("simclr", 1e-2): {"mnist": [{"label": label(0.95, 0.70)}]},
  }
  sweep = reports.by_method_and_dataset(finals)
  assert list(sweep) == [("simclr", "mnist")]
  assert reports.chosen_rate(sweep["simclr", "mnist"]) == 1e-2  # on val
  rows = reports.sweep_table(sweep, show_test=True).splitlines()[2:]
  assert rows == [
      "| simclr | MNIST | 0.001 | 90.0 | 90.0 |  |  |",
      "| simclr | MNIST | 0.01 (chosen, at the edge of the grid) | 95.0 | 95.0"
      " | **70.0** | **70.0** |",
  ]
  hidden = reports.sweep_table(sweep, show_test=False)
  assert "**" not in hidden
  chosen = {("simclr", "mnist"): {1e-2: sweep["simclr", "mnist"][1e-2]}}
  assert reports.chosen_runs_table(chosen).splitlines()[2] == (
      "| simclr | MNIST | 0.01 | 95.0 | **70.0** | **70.0** | 70.0 | 97.2 / 97.2 |"
  )

  def final(acc):
    keys = ("mlp_probe_acc", "linear_probe_acc", "knn_acc", "gmm_acc")
    extra = {"knn_k": 5, "mlp_probe_epoch": 3, "recon_mse": 0.01}
    return {"label": {**dict.fromkeys(keys, acc), **extra}}

  simvae = {"mnist": [final(0.97), final(0.99)]}
  summary = reports.simvae_summary_table(simvae, ["mnist"]).splitlines()
  assert summary[2].endswith(
      "| 98.0 ± 1.0 | 98.4 / 98.5 | MLP met (>= 98.0), kNN met (>= 98.0) |"
  )
  per_run = reports.per_run_table(
      simvae, {"mnist": [60.0, 90.0]}, ["mnist"], [0, 1]
  )
  assert per_run.splitlines()[3] == (
      "| MNIST | 1 | 99.00 | 99.00 | 99.00 | 99.00 | 5 | 3 | 0.0100 | 1.5 |"
  )


def test_table1_reports_are_pure_functions_of_the_results():
  """table1's tables from hand-made results, in process: mean ± s.e. over
  seeds, the paper's cell, and "—" for FID samples a method cannot make."""

  def final(acc, fid_recon, samples=None):
    label = dict.fromkeys(reports.METRICS, acc)
    fid = {
        "reconstructions": fid_recon,
        **({"samples": samples} if samples else {}),
    }
    return {"label": {**label, "recon_mse": acc / 10}, "fid": fid}

  finals = {
      "simclr": {"mnist": [final(0.80, 90.0), final(0.82, 94.0)]},
      "simvae": {"mnist": [final(0.96, 70.0, 100.0), final(0.98, 72.0, 104.0)]},
  }
  walls = {
      "simclr": {"mnist": [60.0, 120.0]},
      "simvae": {"mnist": [180.0, 180.0]},
  }
  names = ["simclr", "simvae"]
  accuracy = reports.accuracy_table(finals, names, ["mnist"]).splitlines()
  assert accuracy[0].startswith("| method | MNIST MP | MNIST KNN |")
  assert accuracy[2] == (
      "| simclr | 81.0 ± 1.0 | 81.0 ± 1.0 | 81.0 ± 1.0 | 81.0 ± 1.0 | 97.2 / 97.2 |"
  )
  fid = reports.fid_table(finals, names, ["mnist"]).splitlines()
  assert fid[2] == "| simclr | — | 92.0 ± 2.0 |"
  assert fid[3] == "| simvae | 102.0 ± 2.0 | 71.0 ± 1.0 |"
  cost = reports.cost_table(finals, walls, names, ["mnist"]).splitlines()
  assert cost[2] == "| simclr | 0.0810 ± 0.0010 | 1.5 ± 0.5 |"


def test_the_views_and_style_tables_are_pure_functions_of_the_results():
  def final(content, style):
    tasks = {
        "style_mean": {
            "mlp_probe_acc": style,
            "knn_acc": style,
            "majority_acc": 0.5,
        },
        "style/hflip": {"mlp_probe_acc": style, "majority_acc": 0.5},
    }
    return {
        "label": {"mlp_probe_acc": content, "knn_acc": content},
        "tasks": tasks,
    }

  finals = {("simvae", 1): {"mnist": [final(0.9, 0.8), final(0.92, 0.84)]}}
  walls = {("simvae", 1): {"mnist": [120.0, 120.0]}}
  views = reports.views_table(finals, walls, [("simvae", 1)], ["mnist"])
  assert (
      views.splitlines()[2]
      == "| simvae | 1 | 91.0 ± 1.0 | 91.0 ± 1.0 | 2.0 ± 0.0 |"
  )
  style = reports.style_table(
      {"simclr": finals[("simvae", 1)]}, ["simclr"], "mnist"
  ).splitlines()
  assert style[0].endswith("| hflip |")
  assert style[2] == (
      "| simclr | 91.0 ± 1.0 | 91.0 ± 1.0 | 82.0 ± 2.0 | 82.0 ± 2.0 | 82.0 ± 2.0 |"
  )
  assert style[3] == "| majority baseline |  |  | 50.0 |  | 50.0 |"
