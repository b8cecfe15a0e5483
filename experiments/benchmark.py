"""Times the compiled train step (on-device augmentation included) for a config.

python experiments/benchmark.py --config=configs/mnist.py \
    --config.data.source=npz --config.data.path=../shared/datasets/mnist.npz \
    --config.num_views=2

Prints one JSON line: compile time, median step time over repeats, views/s,
achieved GFLOP/s (XLA's FLOP count of the step divided by the median time) and
the machine's yardstick measured in the same process: the GFLOP/s of a large
float32 matmul, and the step's GFLOP/s as a fraction of it, so that figures from
different machines can be related.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from simvae_jax import train_step
from simvae_jax.train import Experiment

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.")
_REPEATS = flags.DEFINE_integer(
    "repeats", 7, "Timed repeats; the median is reported."
)
_STEPS = flags.DEFINE_integer("steps_per_repeat", 20, "Steps per timed repeat.")
_WARMUP = flags.DEFINE_integer(
    "warmup_steps", 5, "Untimed steps after compiling."
)
_DEVICES = flags.DEFINE_list(
    "devices",
    [],
    "Device counts to compare, e.g. 1,2,4,8: each runs in its own process with "
    "that many simulated CPU devices (the batch split over all of them), so "
    "scaling overheads show up in views/s. Empty: the devices JAX sees.",
)
flags.mark_flags_as_required(["config"])


def step_flops(compiled) -> float:
  """FLOPs of one step according to XLA's cost analysis (0 if unavailable)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get("flops", 0.0))


def matmul_gflop_per_s(size: int = 2048, repeats: int = 7) -> float:
  """The yardstick: float32 GFLOP/s of a jitted [size, size] @ [size, size]."""
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  jax.block_until_ready(matmul(a))
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    jax.block_until_ready(matmul(a))
    times.append(time.perf_counter() - started)
  return 2 * size**3 / statistics.median(times) / 1e9


def benchmark(
    config, repeats: int, steps_per_repeat: int, warmup_steps: int
) -> dict:
  experiment = Experiment.from_config(config)
  state = experiment.initial_state()
  per_dispatch = config.steps_per_dispatch
  images = np.stack(
      [experiment.train_source[i]["image"] for i in range(config.batch_size)]
  )
  batch = {"image": images, "label": np.zeros(config.batch_size, np.int32)}
  batches = train_step.stack_batches([batch] * per_dispatch, experiment.mesh)
  steps_fn = experiment.compile_steps()
  started = time.perf_counter()
  # The steps nobody logs: no diagnostics (global norms).
  compiled = steps_fn.lower(state, batches, np.bool_(False)).compile()
  compile_s = time.perf_counter() - started
  dispatches = max(1, steps_per_repeat // per_dispatch)
  for _ in range(max(1, warmup_steps // per_dispatch)):
    state, _ = compiled(state, batches, np.bool_(False))
  jax.block_until_ready(state)
  step_times = []
  for _ in range(repeats):
    started = time.perf_counter()
    for _ in range(dispatches):
      state, metrics = compiled(state, batches, np.bool_(False))
    jax.block_until_ready(metrics)
    elapsed = time.perf_counter() - started
    step_times.append(elapsed / (dispatches * per_dispatch))
  median = statistics.median(step_times)
  views = config.batch_size * config.num_views
  flops = step_flops(compiled)
  yardstick = matmul_gflop_per_s()
  return {
      "config": f"{config.data.name} {config.method}",
      "encoder": config.model.encoder,
      "decoder": config.model.decoder,
      "dtype": config.model.dtype,
      "images_per_step": config.batch_size,
      "num_views": config.num_views,
      "steps_per_dispatch": per_dispatch,
      "views_per_step": views,
      "devices": jax.device_count(),
      "backend": jax.default_backend(),
      "machine": platform.processor() or platform.machine(),
      "compile_s": round(compile_s, 3),
      "median_step_ms": round(1e3 * median, 3),
      "min_step_ms": round(1e3 * min(step_times), 3),
      "max_step_ms": round(1e3 * max(step_times), 3),
      "views_per_s": round(views / median, 1),
      "gflop_per_step": round(flops / 1e9, 4),
      "gflop_per_s": round(flops / median / 1e9, 2),
      "matmul_gflop_per_s": round(yardstick, 1),
      "fraction_of_matmul": round(flops / median / 1e9 / yardstick, 3),
      "repeats": repeats,
      "steps_per_repeat": steps_per_repeat,
  }


def run_per_device_count(counts: list[int]) -> list[dict]:
  """Runs this script once per device count (simulated CPU devices)."""
  arguments = [a for a in sys.argv[1:] if not a.startswith("--devices")]
  results = []
  for count in counts:
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={count}",
        JAX_PLATFORMS="cpu",
    )
    completed = subprocess.run(
        [sys.executable, __file__, *arguments],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    print(json.dumps(results[-1]), flush=True)
  return results


def main(argv):
  del argv
  if _DEVICES.value:
    results = run_per_device_count([int(n) for n in _DEVICES.value])
    base = results[0]["views_per_s"]
    print("devices  views/s  relative to the first", flush=True)
    for result in results:
      print(
          f"{result['devices']:7d}  {result['views_per_s']:7.1f}  "
          f"{result['views_per_s'] / base:.2f}",
          flush=True,
      )
    return
  print(
      json.dumps(
          benchmark(_CONFIG.value, _REPEATS.value, _STEPS.value, _WARMUP.value)
      )
  )


if __name__ == "__main__":
  app.run(main)
