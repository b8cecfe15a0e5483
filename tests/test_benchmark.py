"""The benchmarks measure the real compiled step, input pipeline and loop, and
report consistent numbers."""

import json
import os
import subprocess
import sys

import jax
import pytest

from conftest import REPO, tiny_digits_config
from simvae_jax import benchmarking as benchmark


@pytest.mark.slow
def test_benchmark_reports_measured_numbers():
  config = tiny_digits_config(batch_size=16, num_views=5)
  result = benchmark.benchmark(
      config, repeats=3, steps_per_repeat=2, warmup_steps=1
  )
  assert result["views_per_step"] == 80
  assert (
      result["min_step_ms"] <= result["median_step_ms"] <= result["max_step_ms"]
  )
  # views/s comes from the unrounded median; median_step_ms is rounded to 1 µs.
  median = result["median_step_ms"]
  assert (
      80e3 / (median + 5e-4) - 0.1
      <= result["views_per_s"]
      <= 80e3 / (median - 5e-4) + 0.1
  )
  # XLA's FLOP count must at least cover the forward matmuls of the encoder
  # (64 -> 64 -> 8) and decoder (4 -> 64 -> 64) for 80 views.
  forward_matmul_flops = 2 * 80 * (64 * 64 + 64 * 8 + 4 * 64 + 64 * 64)
  assert result["gflop_per_step"] * 1e9 > forward_matmul_flops
  assert result["compile_s"] > 0
  assert result["matmul_gflop_per_s"] > 0
  assert result["fraction_of_matmul"] == pytest.approx(
      result["gflop_per_s"] / result["matmul_gflop_per_s"], abs=2e-3
  )


@pytest.mark.slow
def test_benchmark_compares_device_counts():
  completed = subprocess.run(
      [
          sys.executable,
          "experiments/benchmark.py",
          "--config=configs/digits.py",
          "--config.batch_size=16",
          "--config.num_views=2",
          "--devices=1,2",
          "--repeats=1",
          "--steps_per_repeat=1",
          "--warmup_steps=0",
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  lines = [
      json.loads(l) for l in completed.stdout.splitlines() if l.startswith("{")
  ]
  assert [line["devices"] for line in lines] == [1, 2]
  assert all(line["views_per_s"] > 0 for line in lines)
  assert "relative to the first" in completed.stdout


def test_input_benchmark_delivers_batches_to_the_devices():
  config = tiny_digits_config(batch_size=16, steps_per_dispatch=2)
  result = benchmark.input_benchmark(config, seconds=0.2)
  assert result["examples"] == 1437 and result["image_shape"] == [8, 8, 1]
  assert result["batches"] > 0 and result["batches"] % 2 == 0
  assert result["images_per_s"] > 0 and result["load_s"] >= 0


def test_loop_benchmark_runs_the_training_loop_around_an_idle_step():
  """The idle step keeps the state but for its step count: the loop ran the
  number of steps it reports, K per dispatch, with a trivial model's state and
  with the real one."""
  config = tiny_digits_config(batch_size=16, steps_per_dispatch=4, log_every=8)
  result = benchmark.loop_benchmark(config, seconds=0.2)
  assert result["steps"] >= 128 and result["steps"] % 4 == 0
  assert result["images_per_s"] == pytest.approx(
      16 * result["steps_per_s"], rel=1e-3
  )
  assert result["real_state_leaves"] > 10
  assert result["real_state_images_per_s"] > 0


@pytest.mark.slow
def test_the_accelerator_check_runs_every_part_with_small_settings(tmp_path):
  """The prepared device check on CPU: devices and yardsticks, the step at
  J = 2 and 10 in both dtypes, the host ceiling at 1 and 8 steps per
  dispatch, and three short evaluated runs, in its JSON and Markdown."""
  completed = subprocess.run(
      [
          "bash",
          "experiments/accelerator_check.sh",
          "--small",
          "--budget_minutes=0.2",
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=600,
      env={
          **os.environ,
          "OUT": str(tmp_path),
          "RUNS_DIR": str(tmp_path / "runs"),
          # This interpreter, not the checkout's .venv (CI's second pass runs
          # the suite in .venv-lowest).
          "PYTHON": sys.executable,
      },
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  summary = json.loads((tmp_path / "accelerator_check.json").read_text())
  assert summary["backend"] == "cpu" and summary["data"] == "synthetic"
  # Run by this interpreter (CI's second pass: the lowest versions).
  assert summary["versions"]["jax"] == jax.__version__
  assert [(r["num_views"], r["dtype"]) for r in summary["steps"]] == [
      (2, "float32"),
      (2, "bfloat16"),
      (10, "float32"),
      (10, "bfloat16"),
  ]
  assert all(
      r["step_ms"] > 0 and r["gflop_per_s"] > 0 for r in summary["steps"]
  )
  assert [r["steps_per_dispatch"] for r in summary["host_ceiling"]] == [1, 8]
  assert [r["method"] for r in summary["runs"]] == ["simvae", "vae", "simclr"]
  for run in summary["runs"]:
    assert run["epochs"] >= 1 and 0 <= run["mlp_probe_acc"] <= 1
  report = (tmp_path / "accelerator_check.md").read_text()
  assert "## Short runs" in report and "| simclr | 2 |" in report
