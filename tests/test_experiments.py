"""Experiment plumbing: jobs are skipped when finished; table1 runs end to end."""

import json
import os
import sys

import pytest

import paper
import runs
from simvae_jax import outputs
from simvae_jax.experiment import Experiment

from conftest import digits_config, run, tiny_digits_config, train_digits


def run_script(script: str, tmp_path, *flags) -> str:
  """Runs ``experiments/<script>.py`` on digits with its jobs and results
  under tmp_path; asserts it succeeds and returns the results folder."""
  script_output(script, tmp_path, *flags)
  return tmp_path / "results"


def script_output(script: str, tmp_path, *flags) -> str:
  """``run_script``'s run; returns its stdout."""
  completed = run(
      [
          sys.executable,
          f"experiments/{script}.py",
          "--datasets=digits",
          f"--root={tmp_path / 'runs'}",
          f"--results={tmp_path / 'results'}",
          *flags,
      ]
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  return completed.stdout


@pytest.mark.slow
def test_finished_job_is_skipped_and_changed_config_reruns(tmp_path):
  workdir = str(tmp_path / "job")
  config = tiny_digits_config(num_steps=4)
  final, history, wall = runs.run_job(config, workdir)
  stamp = os.path.getmtime(os.path.join(workdir, "eval.json"))
  again, _, wall_again = runs.run_job(tiny_digits_config(num_steps=4), workdir)
  assert again == final and wall_again == wall
  assert os.path.getmtime(os.path.join(workdir, "eval.json")) == stamp
  longer, history, _ = runs.run_job(tiny_digits_config(num_steps=6), workdir)
  assert longer["step"] == 6 and history[-1]["epoch"] == 6 / (1437 // 32)
  with pytest.raises(ValueError, match="num_views"):
    runs.run_job(tiny_digits_config(num_steps=8, num_views=2), workdir)


@pytest.mark.slow
def test_gmm_check_script_reports_both_mixtures_and_their_summary(tmp_path):
  """``experiments/gmm_check.py``: one line per (implementation, seed), then
  means and standard errors over the seeds of those lines, and the speed-up."""
  train_digits(tmp_path / "run", 100)
  completed = run(
      [
          sys.executable,
          "experiments/gmm_check.py",
          "--config=configs/digits.py",
          f"--workdir={tmp_path / 'run'}",
          "--seeds=0,1",
      ]
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  *lines, summary = map(json.loads, completed.stdout.strip().splitlines())
  assert [(l["implementation"], l["seed"]) for l in lines] == [
      ("sklearn", 0),
      ("jax", 0),
      ("sklearn", 1),
      ("jax", 1),
  ]
  experiment = Experiment.from_config(digits_config(100))
  assert summary["points"] == [
      len(experiment.probe_source),
      experiment.config.model.latent_dim,
  ]
  for name in ("sklearn", "jax"):
    rows = [l for l in lines if l["implementation"] == name]
    for key in ("gmm_acc", "gmm_nmi", "gmm_ari", "seconds"):
      values = [row[key] for row in rows]
      mean, error = summary[name][key]
      assert mean == pytest.approx(sum(values) / 2, abs=1e-4)
      assert error == pytest.approx(abs(values[0] - values[1]) / 2, abs=1e-4)
    assert all(row["gmm_acc"] > 0.3 for row in rows)  # chance: 0.1
  ratio = summary["sklearn"]["seconds"][0] / summary["jax"]["seconds"][0]
  assert summary["speedup"] == pytest.approx(ratio, abs=0.1)


def test_results_name_never_overwrites_unless_asked(tmp_path):
  assert runs.results_name(str(tmp_path), "t", False, (".md", ".png")) == "t"
  (tmp_path / "t.png").write_text("")
  assert runs.results_name(str(tmp_path), "t", False, (".md", ".png")) == "t-2"
  (tmp_path / "t-2.md").write_text("")
  assert runs.results_name(str(tmp_path), "t", False, (".md", ".png")) == "t-3"
  assert runs.results_name(str(tmp_path), "t", True, (".md", ".png")) == "t"


def test_mean_and_error():
  mean, error = runs.mean_and_error([1.0, 2.0, 4.0])
  assert mean == 7 / 3
  assert abs(error - 1.5275252 / 3**0.5) < 1e-6
  assert runs.format_mean_error([0.5, 0.7]) == "60.0 ± 10.0"
  assert runs.format_mean_error([0.5]) == "50.0"


@pytest.mark.slow
def test_table1_script_on_digits(tmp_path):
  notes = tmp_path / "notes.md"
  notes.write_text("## Discussion\nhand-written\n")
  command = [
      "--methods=random,simclr,simvae",
      "--seeds=0",
      "--num_epochs=1",
      "--posthoc_decoder_steps=20",
      "--name=table1_digits",
      f"--notes={notes}",
  ]
  run_script("table1", tmp_path, *command)
  report = (tmp_path / "results" / "table1_digits.md").read_text()
  for method in ("random", "simclr", "simvae"):
    assert f"| {method} |" in report
  assert report.endswith("## Discussion\nhand-written\n")
  assert (tmp_path / "results" / "table1_digits_reconstructions.png").exists()
  assert (tmp_path / "results" / "table1_digits_samples.png").exists()
  assert "![samples](table1_digits_samples.png)" in report
  # Run again (jobs are finished, so only the report is made): a new name,
  # the committed file untouched; --replace rewrites it; --fid evaluates the
  # finished jobs again with FID instead of retraining them.
  (tmp_path / "results" / "table1_digits.md").write_text("committed")
  fid = ["--replace", "--fid", f"--fid_cache_dir={tmp_path / 'fid'}"]
  for extra in ([], fid):
    run_script("table1", tmp_path, *command, *extra)
  assert (tmp_path / "results" / "table1_digits-2.md").exists()
  assert (tmp_path / "results" / "table1_digits-2_reconstructions.png").exists()
  assert (
      "Command: `python experiments/table1.py"
      in (tmp_path / "results" / "table1_digits-2.md").read_text()
  )
  report = (tmp_path / "results" / "table1_digits.md").read_text()
  assert "simvae | " in report and "FID samples" in report
  assert "not comparable with published Inception FIDs" in report
  for method in ("random", "simclr", "simvae"):
    with open(
        tmp_path / "runs" / method / "digits_seed0" / "metrics.jsonl"
    ) as f:
      assert f.read().count("\n") in (0, 1)  # not retrained (1 epoch, 1 log)


def test_gaps_over_lists_only_means_beyond_the_threshold():
  def seeds(mlp, knn):
    return [
        {"label": {"mlp_probe_acc": a, "knn_acc": b}} for a, b in zip(mlp, knn)
    ]

  finals = {
      "simvae": {
          "mnist": seeds([0.984, 0.982], [0.970, 0.972]),  # paper 98.4 / 98.5
          "digits": seeds([0.5], [0.5]),
      },  # not in the paper
      "random": {"fashion_mnist": seeds([0.60], [0.665])},
  }  # paper 49.8 / 66.5
  assert paper.gaps_over(finals) == [
      "- simvae, MNIST KNN: 97.1 vs the paper's 98.5 (-1.4)",
      "- random, Fashion-MNIST MP: 60.0 vs the paper's 49.8 (+10.2)",
  ]


def test_paper_accuracy_and_cell_name_table1_numbers_and_mark_unreported():
  assert paper.paper_accuracy("simvae", "fashion_mnist") == {
      "mlp_probe_acc": 82.1,
      "knn_acc": 86.5,
  }
  assert paper.paper_accuracy("simvae", "digits") == {}
  assert paper.paper_accuracy("no_such_method", "mnist") == {}
  assert paper.paper_cell("simvae", "fashion_mnist") == "82.1 / 86.5"
  assert paper.paper_cell("simvae", "digits") == "—"


def test_changed_keys_ignore_fields_added_after_the_run():
  from simvae_jax import workdir  # pylint: disable=import-outside-toplevel

  previous = {"method": "simvae", "eval": {"knn_ks": [1]}, "old_field": 1}
  current = {
      "method": "simvae",
      "eval": {"knn_ks": [1, 3]},
      "new_field": 2,
      "num_steps": 9,
  }
  assert workdir.changed_keys(previous, current) == ["old_field"]
  current["method"] = "vae"
  assert workdir.changed_keys(previous, current) == ["method", "old_field"]


@pytest.mark.slow
def test_style_vs_content_script_on_digits(tmp_path):
  run_script(
      "style_vs_content",
      tmp_path,
      "--methods=simclr,simvae",
      "--seeds=0",
      "--num_epochs=1",
      "--posthoc_decoder_steps=20",
  )
  report = (tmp_path / "results" / "style_vs_content.md").read_text()
  assert (tmp_path / "results" / "style_vs_content.png").exists()
  assert "H2 holds" in report or "H2 does not hold" in report
  assert "best discriminative SSL method (simclr; one seed" in report
  for row in ("| simclr |", "| simvae |", "| majority baseline |"):
    assert row in report
  for task in ("hflip", "vflip", "rotation", "crop_position", "crop_scale"):
    assert task in report
  assert "Command: `python experiments/style_vs_content.py" in report


@pytest.mark.slow
def test_ablation_j_script_on_digits(tmp_path):
  flags = ("--views=1,2", "--seeds=0", "--num_epochs=1")
  planned = script_output("ablation_j", tmp_path, *flags, "--dry_run")
  assert planned.splitlines()[-1] == (
      "3 jobs (3 new); nothing was run (--dry_run)."
  )
  assert not (tmp_path / "runs").exists()
  run_script("ablation_j", tmp_path, *flags)
  done = script_output("ablation_j", tmp_path, *flags, "--dry_run")
  assert f"finished {tmp_path}/runs/simclr/digits_J2_seed0" in done
  report = (tmp_path / "results" / "ablation_j.md").read_text()
  assert (tmp_path / "results" / "ablation_j.png").exists()
  assert "| simvae | 1 |" in report and "| simvae | 2 |" in report
  assert "| simclr | 2 |" in report and "| simclr | 1 |" not in report
  runs_dir = tmp_path / "runs"
  assert sorted(p.name for p in (runs_dir / "simvae").iterdir()) == [
      "digits_J1_seed0",
      "digits_J2_seed0",
  ]
  with open(runs_dir / "simvae" / "digits_J1_seed0" / "config.json") as file:
    assert '"num_views": 1' in file.read()


@pytest.mark.slow
def test_simvae_script_with_a_schedule_and_flips_on_digits(tmp_path):
  run_script(
      "simvae_mnist_fmnist",
      tmp_path,
      "--seeds=0",
      "--num_epochs=2",
      "--learning_rate=1e-3",
      "--schedule=warmup_cosine",
      "--flip=vertical",
  )
  report = (tmp_path / "results" / "simvae_mnist_fmnist.md").read_text()
  assert "| digits | " in report
  assert "flips vertical" in report  # digits' config has none
  assert "linear warmup for 1 epoch(s), then cosine decay" in report
  metrics = outputs.read_jsonl(
      str(tmp_path / "runs" / "digits_seed0" / "metrics.jsonl")
  )
  assert metrics[-1]["learning_rate"] < 0.05 * 1e-3  # decayed by the end


@pytest.mark.slow
def test_an_interrupted_job_is_not_marked_finished(tmp_path, monkeypatch):
  workdir = str(tmp_path / "job")
  config = tiny_digits_config(num_steps=4)
  real = runs.train.train_and_evaluate
  monkeypatch.setattr(
      runs.train,
      "train_and_evaluate",
      lambda config, workdir: {"step": 2, "interrupted": True},
  )
  with pytest.raises(runs.Interrupted, match="re-run the same command"):
    runs.run_job(config, workdir)
  monkeypatch.setattr(runs.train, "train_and_evaluate", real)
  final, _, _ = runs.run_job(config, workdir)  # trains now, not skipped
  assert final["step"] == 4


@pytest.mark.slow
def test_lr_sweep_chooses_on_validation_and_reports_test_once(tmp_path):
  results = run_script(
      "lr_sweep",
      tmp_path,
      "--methods=simclr",
      "--learning_rates=1e-3,1e-2",
      "--seeds=0",
      "--num_epochs=1",
      "--posthoc_decoder_steps=20",
  )
  report = (results / "lr_sweep.md").read_text()
  rows = [l for l in report.splitlines() if l.startswith("| simclr | digits")]
  assert len(rows) == 2 and sum("(chosen" in r for r in rows) == 1
  chosen = next(r for r in rows if "(chosen" in r)
  other = next(r for r in rows if "(chosen" not in r)
  assert "(chosen, at the edge of the grid)" in chosen  # of two rates
  assert chosen.count("**") == 4 and other.endswith("|  |  |")
  val = lambda row: float(row.split("|")[4])
  assert val(chosen) >= val(other)  # the best validation MLP probe


@pytest.mark.slow
def test_lr_sweep_then_trains_the_chosen_rate_longer_and_tests_only_that(
    tmp_path,
):
  results = run_script(
      "lr_sweep",
      tmp_path,
      "--methods=simclr",
      "--learning_rates=1e-3",
      "--seeds=0",
      "--num_epochs=1",
      "--final_num_epochs=2",
      "--eval_every_epochs=1",
      "--posthoc_decoder_steps=20",
  )
  report = (results / "lr_sweep.md").read_text()
  (sweep_row,) = [
      l
      for l in report.splitlines()
      if l.startswith("| simclr | digits | 0.001 (chosen)")
  ]
  assert sweep_row.endswith("|  |  |")  # the pilot's test is not shown
  (final_row,) = [
      l
      for l in report.splitlines()
      if l.startswith("| simclr | digits | 0.001 |")
  ]
  assert final_row.count("**") == 4
  assert (results / "lr_sweep.png").exists()
  history = outputs.read_jsonl(
      str(
          tmp_path
          / "runs"
          / "simclr"
          / "digits_lr0.001_seed0_2epochs"
          / "eval_history.jsonl"
      )
  )
  assert len(history) == 2  # evaluated after each of the 2 epochs


def test_a_grid_is_data_and_says_which_jobs_are_done(tmp_path):
  jobs = runs.grid(
      [("simvae", 1), ("simclr", 2)],
      ["mnist"],
      [0, 1],
      lambda setting, dataset, seed: f"{setting[0]}/{dataset}_J{setting[1]}_s{seed}",
  )
  assert [job.name for job in jobs] == [
      "simvae/mnist_J1_s0",
      "simvae/mnist_J1_s1",
      "simclr/mnist_J2_s0",
      "simclr/mnist_J2_s1",
  ]
  assert jobs[2] == runs.Job(("simclr", 2), "mnist", 0, "simclr/mnist_J2_s0")
  config = tiny_digits_config(num_steps=4)
  workdir = tmp_path / "job"
  assert runs.job_state(config, str(workdir)) == "new"
  workdir.mkdir()
  (workdir / "checkpoints").mkdir()
  assert runs.job_state(config, str(workdir)) == "resumes"
  job = {"config": runs.run_dir.resolved(config), "finished": True}
  (workdir / "job.json").write_text(json.dumps(job))
  assert runs.job_state(config, str(workdir)) == "finished"
  assert runs.job_state(tiny_digits_config(num_steps=6), str(workdir)) == (
      "resumes"
  )
