"""The prepared accelerator check: what one GPU (or TPU) does with this package
within a fixed budget (8 minutes on one H200), in one run.

python experiments/accelerator_check.py --out=DIR [--data=NPZ,...] \
    [--budget_minutes=8] [--small]

1. The devices, and the yardstick: a large matmul's GFLOP/s in float32 and
   bfloat16 on them.
2. The CIFAR-10 step (the paper's networks, 64 images) at J = 2 and J = 10,
   in float32 and bfloat16: step ms, images/s, GFLOP/s and its fraction of
   the chip's peak (where the chip is known) and of the yardstick.
3. The host ceiling: the real pipeline and loop around an idle step
   (``benchmark.py --what=loop``) at 1 and 8 steps per dispatch.
4. CIFAR-10 SimVAE (J = 10), VAE and SimCLR (J = 2) trained for as many
   epochs as the measured step times fit in what is left of the budget, each
   evaluated (MLP probe and kNN on up to 10,000 training images, GMM, post-hoc
   decoder for SimCLR): one results table.

Writes ``DIR/accelerator_check.json`` (everything) and
``DIR/accelerator_check.md`` (the tables). ``--data`` takes the CIFAR-10 npz
files (default: ``../shared/datasets``'s, else ``.data/cifar10_check.npz``,
which ``--prepare_data`` writes: 12,000 training and 4,000 test images, small
enough to travel to a device machine); without any, synthetic images serve the
timings and the runs are marked synthetic. ``--small`` shrinks every part to
seconds on synthetic data (the test runs it on CPU).
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import shutil
import tempfile
import time

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

import runs
from simvae_jax import cli, configs
from simvae_jax import benchmarking as benchmark
from simvae_jax import train
from simvae_jax.data import npz

_OUT = flags.DEFINE_string("out", "runs/accelerator_check", "Output folder.")
_RUNS = flags.DEFINE_string(
    "runs_dir", "", "Where the three runs train (default: OUT/runs)."
)
_DATA = flags.DEFINE_string(
    "data", "", "CIFAR-10 npz file(s), comma-separated."
)
_BUDGET = flags.DEFINE_float("budget_minutes", 8.0, "The whole check's budget.")
_SMALL = flags.DEFINE_bool("small", False, "Tiny settings (CPU test).")
_PREPARE = flags.DEFINE_string(
    "prepare_data", "", "Write a CIFAR-10 subset npz here for a device machine."
)

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets"
CHECK_DATA = pathlib.Path(".data/cifar10_check.npz")
# Dense peak TFLOP/s by device kind and dtype (float32 matmuls run as TF32 at
# JAX's default precision on NVIDIA tensor cores).
PEAK_TFLOPS = {
    "NVIDIA H200": {"float32": 494.0, "bfloat16": 989.0},
    "NVIDIA H100 80GB HBM3": {"float32": 494.0, "bfloat16": 989.0},
}
RUNS = (("simvae", 10), ("vae", 2), ("simclr", 2))


def default_data() -> str:
  parts = [
      SHARED / "cifar10_train_part0.npz",
      SHARED / "cifar10_train_part1.npz",
      SHARED / "cifar10_test.npz",
  ]
  if all(p.exists() for p in parts):
    return ",".join(str(p) for p in parts)
  return str(CHECK_DATA) if CHECK_DATA.exists() else ""


def prepare_data(path: str) -> None:
  """A CIFAR-10 subset small enough to travel (12,000 train, 4,000 test)."""
  train_images, train_labels = npz.load_split(default_data(), "train")
  test_images, test_labels = npz.load_split(default_data(), "test")
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  np.savez(
      path,
      x_train=train_images[:12000],
      y_train=train_labels[:12000],
      x_test=test_images[:4000],
      y_test=test_labels[:4000],
  )


def synthetic_data(folder: str, small: bool) -> str:
  """Random CIFAR-shaped images with labels (timings only)."""
  rng = np.random.default_rng(0)
  count = 512 if small else 4096
  path = os.path.join(folder, "synthetic_cifar10.npz")
  np.savez(
      path,
      x_train=rng.integers(0, 256, (count, 32, 32, 3), np.uint8),
      y_train=rng.integers(0, 10, count),
      x_test=rng.integers(0, 256, (count // 4, 32, 32, 3), np.uint8),
      y_test=rng.integers(0, 10, count // 4),
  )
  return path


def base_config(data: str, small: bool):
  config = configs.load("cifar10")
  config.data.source, config.data.path = "npz", data
  config.compilation_cache_dir = ""
  config.eval.compare_untrained = False
  config.eval.max_train_examples = 10000
  config.eval.probe_epochs = 30
  config.eval.probe_patience = 5
  config.posthoc_decoder.num_steps = 500
  config.checkpoint_every_minutes = 0.0
  if small:  # seconds on a CPU: small MLPs, few images
    config.batch_size = 16
    config.data.train_subset = 256
    config.eval.max_train_examples = 128
    config.eval.probe_epochs = 2
    config.eval.knn_ks = (1, 3)
    config.posthoc_decoder.num_steps = 4
    config.log_every = 4
    config.model.encoder = config.model.decoder = "mlp"
    config.model.encoders.mlp.hidden_sizes = (32,)
    config.model.decoders.mlp.hidden_sizes = (32,)
  return config


def step_benchmarks(config, small: bool, yardsticks: dict) -> list[dict]:
  kind = jax.devices()[0].device_kind
  rows = []
  for num_views in (2, 10):
    for dtype in ("float32", "bfloat16"):
      trial = config.copy_and_resolve_references()
      trial.num_views, trial.model.dtype = num_views, dtype
      result = benchmark.benchmark(
          trial,
          repeats=2 if small else 5,
          steps_per_repeat=2 if small else 20,
          warmup_steps=1 if small else 5,
      )
      gflops = result["gflop_per_s"]
      peak = PEAK_TFLOPS.get(kind, {}).get(dtype)
      rows.append(
          {
              "num_views": num_views,
              "dtype": dtype,
              "step_ms": result["median_step_ms"],
              "images_per_s": round(
                  1e3 * trial.batch_size / result["median_step_ms"], 1
              ),
              "gflop_per_s": gflops,
              "fraction_of_peak": round(gflops / 1e3 / peak, 3)
              if peak
              else None,
              "fraction_of_yardstick": round(gflops / yardsticks[dtype], 3),
              "compile_s": result["compile_s"],
          }
      )
      print(json.dumps(rows[-1]), flush=True)
  return rows


def host_ceiling(config, small: bool) -> list[dict]:
  rows = []
  for per_dispatch in (1, 8):
    trial = config.copy_and_resolve_references()
    trial.steps_per_dispatch, trial.log_every = per_dispatch, 400
    result = benchmark.loop_benchmark(trial, seconds=0.5 if small else 5.0)
    rows.append(
        {
            "steps_per_dispatch": per_dispatch,
            "images_per_s": result["images_per_s"],
            "real_state_images_per_s": result["real_state_images_per_s"],
        }
    )
    print(json.dumps(rows[-1]), flush=True)
  return rows


def epochs_that_fit(seconds: float, step_ms: float, steps_per_epoch: int):
  """Whole epochs of ``steps_per_epoch`` steps of ``step_ms`` (with a third
  more for the loop and logging) in ``seconds`` (at least one)."""
  epoch_s = steps_per_epoch * step_ms * 1.33 / 1e3
  return max(1, int(seconds // epoch_s))


def train_runs(config, steps, deadline, runs, small: bool) -> list[dict]:
  """SimVAE, VAE and SimCLR, sharing what is left of the budget."""
  step_ms = {
      r["num_views"]: r["step_ms"] for r in steps if r["dtype"] == "float32"
  }
  # Compiling, the post-hoc decoder and the evaluation of each run.
  eval_reserve_s = 5.0 if small else 90.0
  rows = []
  for index, (method, num_views) in enumerate(RUNS):
    left = deadline - time.time()
    share = left / (len(RUNS) - index) - eval_reserve_s
    trial = config.copy_and_resolve_references()
    trial.method, trial.num_views = method, num_views
    examples = trial.data.train_subset or len(
        npz.load_split(trial.data.path, "train")[1]
    )
    epochs = epochs_that_fit(
        share, step_ms[num_views], examples // trial.batch_size
    )
    trial.num_epochs = epochs
    started = time.time()
    results = train.train_and_evaluate(trial, str(runs / method))
    label = results["label"]
    rows.append(
        {
            "method": method,
            "num_views": num_views,
            "epochs": epochs,
            "seconds": round(time.time() - started, 1),
            "mlp_probe_acc": label.get("mlp_probe_acc"),
            "knn_acc": label.get("knn_acc"),
            "gmm_acc": label.get("gmm_acc"),
            "recon_mse": label.get("recon_mse"),
        }
    )
    print(json.dumps(rows[-1]), flush=True)
  return rows


def table(rows: list[dict]) -> str:
  """Rows of equal keys as a markdown table (floats to 4 digits)."""
  fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else v
  return runs.markdown_table(
      list(rows[0]), [[fmt(v) for v in row.values()] for row in rows]
  )


def main(argv):
  del argv
  if _PREPARE.value:
    prepare_data(_PREPARE.value)
    return
  started = time.time()
  deadline = started + 60 * _BUDGET.value
  small = _SMALL.value
  out = pathlib.Path(_OUT.value)
  runs = pathlib.Path(_RUNS.value or out / "runs")
  shutil.rmtree(runs, ignore_errors=True)  # each check trains afresh
  out.mkdir(parents=True, exist_ok=True)
  scratch = tempfile.mkdtemp()
  data = _DATA.value or ("" if small else default_data())
  synthetic = not data
  config = base_config(data or synthetic_data(scratch, small), small)
  devices = jax.devices()
  print(f"devices: {devices}", flush=True)
  yardsticks = {
      dtype.__name__: benchmark.matmul_gflop_per_s(
          512 if small else 8192, 3 if small else 20, dtype
      )
      for dtype in (jnp.float32, jnp.bfloat16)
  }
  summary = {
      "devices": [str(d) for d in devices],
      "device_kind": devices[0].device_kind,
      "backend": jax.default_backend(),
      "host": platform.node(),
      "versions": {
          "python": platform.python_version(),
          "jax": jax.__version__,
          "jaxlib": jax.lib.__version__,
          "flax": flax.__version__,
      },
      "data": "synthetic" if synthetic else data,
      "yardstick_gflop_per_s": {k: round(v, 1) for k, v in yardsticks.items()},
  }
  print(json.dumps(summary), flush=True)
  summary["steps"] = step_benchmarks(config, small, yardsticks)
  summary["host_ceiling"] = host_ceiling(config, small)
  summary["runs"] = train_runs(config, summary["steps"], deadline, runs, small)
  summary["seconds"] = round(time.time() - started, 1)
  (out / "accelerator_check.json").write_text(json.dumps(summary, indent=1))
  report = (
      f"# Accelerator check: {summary['device_kind']} ({summary['backend']})\n\n"
      f"Software: {summary['versions']}.\n\n"
      f"Data: {summary['data']}. Yardstick (matmul GFLOP/s): "
      f"{summary['yardstick_gflop_per_s']}. Total {summary['seconds']} s.\n\n"
      f"## CIFAR-10 step (64 images)\n\n{table(summary['steps'])}\n\n"
      f"## Host ceiling (idle step, real pipeline and loop)\n\n"
      f"{table(summary['host_ceiling'])}\n\n"
      f"## Short runs\n\n{table(summary['runs'])}\n"
  )
  (out / "accelerator_check.md").write_text(report)
  print(report, flush=True)


if __name__ == "__main__":
  cli.run(main)
