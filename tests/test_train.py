"""End-to-end runs: the outputs contract, evaluation mode, command-line
overrides, learning on real data, the CIFAR-10 and README commands."""

import json
import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from simvae_jax import outputs, train
from simvae_jax.train import Experiment

from conftest import (
    REPO,
    load_repo_config,
    shared_dataset,
    tiny_digits_config,
)


@pytest.mark.slow
def test_run_writes_its_outputs(workdir):
  config = tiny_digits_config(
      num_steps=8, log_every=3, **{"eval.every_steps": 4}
  )
  results = train.train_and_evaluate(config, workdir)
  files = set(os.listdir(workdir))
  assert {
      "config.json",
      "metrics.jsonl",
      "checkpoints",
      "reconstructions.png",
      "samples.png",
      "latents.png",
      "run.json",
      "eval.json",
      "eval_history.jsonl",
  } <= files
  with open(os.path.join(workdir, "config.json")) as file:
    assert json.load(file)["num_steps"] == 8
  metrics = outputs.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [m["step"] for m in metrics] == [3, 6, 8]  # final step always logged
  assert {"loss", "reconstruction", "entropy", "prior", "mean_prior"} <= set(
      metrics[0]
  )
  checkpoints = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  assert checkpoints == ["4", "8"]
  grid = matplotlib.image.imread(os.path.join(workdir, "reconstructions.png"))
  assert grid.shape[0] * 8 == grid.shape[1] * 2  # 2 rows of 8 square images
  with open(os.path.join(workdir, "eval.json")) as file:
    saved = json.load(file)
  assert saved == json.loads(json.dumps(results)) and saved["step"] == 8
  label = saved["label"]
  for key in (
      "mlp_probe_acc",
      "mlp_probe_epoch",
      "linear_probe_acc",
      "linear_probe_epoch",
      "knn_acc",
      "gmm_acc",
      "gmm_nmi",
      "gmm_ari",
      "recon_mse",
      "protocol",
  ):
    assert key in label, key
  assert 0.0 <= label["knn_acc"] <= 1.0 and label["knn_k"] in (1, 3, 5)
  assert 0.0 < label["recon_mse"] < 1.0
  assert "untrained_encoder" in saved
  history = outputs.read_jsonl(os.path.join(workdir, "eval_history.jsonl"))
  assert [h["step"] for h in history] == [4, 8]
  assert history[-1]["label"] == label


@pytest.mark.slow
def test_eval_mode_reevaluates_the_latest_checkpoint(workdir):
  config = tiny_digits_config()
  trained = train.train_and_evaluate(config, workdir)
  evaluated = train.train_and_evaluate(config, workdir, mode="eval")
  assert evaluated["label"] == trained["label"]


def test_eval_mode_without_checkpoint_is_an_error_and_creates_nothing(tmp_path):
  workdir = tmp_path / "never_trained"
  with pytest.raises(FileNotFoundError, match="No checkpoint"):
    train.train_and_evaluate(tiny_digits_config(), str(workdir), mode="eval")
  assert not workdir.exists()
  workdir.mkdir()
  with pytest.raises(FileNotFoundError, match="No checkpoint"):
    train.train_and_evaluate(tiny_digits_config(), str(workdir), mode="eval")
  assert list(workdir.iterdir()) == []


@pytest.mark.slow
def test_evaluation_history_is_append_only(workdir):
  """Re-evaluating or lengthening a run keeps every earlier evaluation; a
  resumed run drops only what an interrupted run logged after its checkpoint."""
  config = tiny_digits_config(
      num_steps=8, **{"eval.every_steps": 4, "eval.compare_untrained": False}
  )
  history = lambda: [
      h["step"]
      for h in outputs.read_jsonl(os.path.join(workdir, "eval_history.jsonl"))
  ]
  train.train_and_evaluate(config, workdir)
  assert history() == [4, 8]
  train.train_and_evaluate(config, workdir, mode="eval")
  assert history() == [4, 8, 8]
  # An interrupted run had logged step 10 after its last checkpoint (8).
  outputs.JsonLinesLog(os.path.join(workdir, "eval_history.jsonl")).write(
      10, {}
  )
  train.train_and_evaluate(
      tiny_digits_config(
          num_steps=12,
          **{"eval.every_steps": 4, "eval.compare_untrained": False},
      ),
      workdir,
  )
  assert history() == [4, 8, 8, 12]
  metrics = [
      m["step"]
      for m in outputs.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  ]
  assert metrics == sorted(set(metrics)) and metrics[-1] == 12


@pytest.mark.slow
def test_command_line_overrides(tmp_path):
  completed = subprocess.run(
      [
          sys.executable,
          "-m",
          "simvae_jax.main",
          "--config=configs/digits.py",
          f"--workdir={tmp_path}",
          "--config.seed=1",
          "--config.num_steps=30",
          "--config.num_views=2",
          "--config.log_every=10",
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  with open(tmp_path / "config.json") as file:
    config = json.load(file)
  assert (config["seed"], config["num_steps"], config["num_views"]) == (
      1,
      30,
      2,
  )
  assert [
      m["step"] for m in outputs.read_jsonl(str(tmp_path / "metrics.jsonl"))
  ] == [10, 20, 30]
  assert "step/s" in completed.stderr  # progress bar with rate and ETA
  assert f"Outputs in {tmp_path}" in completed.stdout


def test_num_epochs_sets_the_length():
  config = tiny_digits_config(num_steps=0, num_epochs=2, batch_size=32)
  assert train.num_train_steps(config, 1437) == 2 * (1437 // 32)


@pytest.mark.parametrize(
    "overrides",
    [dict(num_views=0), dict(batch_size=0), dict(num_steps=0, num_epochs=0)],
)
def test_invalid_configs_are_rejected(overrides):
  with pytest.raises(ValueError):
    Experiment.from_config(tiny_digits_config(**overrides))


@pytest.mark.slow
def test_digits_default_learns(workdir):
  """The README's main run: SimVAE beats the untrained encoder on held-out digits."""
  config = load_repo_config("digits")
  results = train.train_and_evaluate(config, workdir)
  metrics = outputs.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert metrics[-1]["loss"] < metrics[0]["loss"] - 50
  assert results["label"]["knn_acc"] >= 0.95
  assert (
      results["label"]["knn_acc"]
      > results["untrained_encoder"]["label"]["knn_acc"] + 0.08
  )


@pytest.mark.slow
def test_short_mnist_run_learns(workdir):
  config = load_repo_config("mnist", "authors")
  config.data.source, config.data.path = "npz", shared_dataset("mnist.npz")
  config.num_steps, config.log_every = 300, 50
  config.eval.max_train_examples = 10000
  config.eval.probe_epochs = 10  # the assertions are on kNN
  config.evals = ("representation", "untrained")
  results = train.train_and_evaluate(config, workdir)
  metrics = outputs.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert metrics[-1]["loss"] < 0.8 * metrics[0]["loss"]
  assert (
      results["label"]["knn_acc"]
      > results["untrained_encoder"]["label"]["knn_acc"]
  )
  assert results["label"]["knn_acc"] > 0.85


@pytest.mark.slow
def test_cifar10_config_runs_end_to_end_on_colour_images(tmp_path):
  """configs/cifar10.py through the command line at tiny widths: colour views,
  conv networks with BatchNorm, the npz source with two training parts."""
  rng = np.random.default_rng(0)
  parts = []
  for index, split in enumerate(("train", "train", "test")):
    path = tmp_path / f"part{index}.npz"
    images = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
    np.savez(
        path, **{f"x_{split}": images, f"y_{split}": rng.integers(0, 10, 48)}
    )
    parts.append(str(path))
  workdir = tmp_path / "run"
  completed = subprocess.run(
      [
          sys.executable,
          "-m",
          "simvae_jax.main",
          "--config=configs/cifar10.py:quick",
          f"--workdir={workdir}",
          "--config.data.source=npz",
          f"--config.data.path={','.join(parts)}",
          "--config.num_steps=3",
          "--config.batch_size=16",
          "--config.model.encoders.resnet_authors.stage_widths=(4,8,8)",
          "--config.model.encoders.resnet_authors.stem_width=8",
          "--config.model.decoders.resnet_authors.widths=(8,8,8,8)",
          "--config.eval.probe_epochs=2",
          "--config.eval.knn_ks=(1,3)",
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  assert "encoder resnet_authors:" in completed.stdout
  assert "decoder resnet_authors:" in completed.stdout
  with open(workdir / "eval.json") as file:
    label = json.load(file)["label"]
  assert 0.0 <= label["knn_acc"] <= 1.0 and 0.0 < label["recon_mse"] < 1.0
  grid = matplotlib.image.imread(workdir / "reconstructions.png")
  assert grid.shape[-1] in (3, 4) and grid.shape[0] * 8 == grid.shape[1] * 2
  metrics = outputs.read_jsonl(str(workdir / "metrics.jsonl"))
  assert metrics[-1]["step"] == 3 and np.isfinite(metrics[-1]["loss"])
  # The evaluation read the test part, in order, as the networks see it.
  with (
      np.load(parts[2]) as test,
      np.load(workdir / "reconstructions.npz") as out,
  ):
    count = len(out["originals"])
    np.testing.assert_allclose(
        out["originals"], test["x_test"][:count] / 255.0, atol=1e-6
    )
    assert out["reconstructions"].shape == out["originals"].shape


@pytest.mark.slow
def test_readme_quick_start_command_with_a_relative_workdir(tmp_path):
  """The README's main command as written (a relative --workdir)."""
  completed = subprocess.run(
      [
          sys.executable,
          "-m",
          "simvae_jax.main",
          "--config=" + str(REPO / "configs" / "digits.py"),
          "--workdir=runs/digits",
          "--config.num_steps=20",
          "--config.checkpoint_every=10",
          "--config.eval.probe_epochs=2",
      ],
      cwd=tmp_path,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  assert sorted(os.listdir(tmp_path / "runs" / "digits" / "checkpoints")) == [
      "10",
      "20",
  ]
  assert (tmp_path / "runs" / "digits" / "eval.json").exists()
