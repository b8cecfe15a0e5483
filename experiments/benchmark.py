"""Times the train step, the input pipeline or the host loop for a config.

python experiments/benchmark.py --config=configs/mnist.py \
    --config.data.source=npz --config.data.path=../shared/datasets/mnist.npz \
    --config.num_views=2 [--what=step|input|loop|eval] [--workdir=RUN]

Prints one JSON line, always with the machine's yardstick measured in the same
process (the GFLOP/s of a large float32 matmul), so that figures from
different machines can be related:

* ``step`` (default): the compiled train step (on-device augmentation
  included, ``steps_per_dispatch`` steps per call, the unlogged steps):
  compile time, median step time over repeats, views/s, achieved GFLOP/s
  (XLA's FLOP count of the step over the median time) and its fraction of the
  yardstick.
* ``input``: what the pipeline delivers to the devices: ``images_per_s`` of
  shuffled batches read from the training source and placed on the devices
  as the step takes them (``load_s``: loading the source, which includes
  decoding it into its cache the first time).
* ``loop``: the host ceiling: the real pipeline and training loop
  (``train.run_steps``: batches, transfers, dispatch of the real train
  state, logging) around a step that does no work, so ``images_per_s`` is the
  most the host can feed a device that took no time.
* ``eval``: seconds per component of a run's final evaluation
  (``seconds``: post-hoc decoder, images, representations, probes, kNN,
  GMM, style images, FID, untrained encoder; as in ``eval.json``) of the
  latest checkpoint in ``--workdir``, or of the initial state without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from absl import flags
from ml_collections import config_flags

from simvae_jax import cli
from simvae_jax.benchmarking import (
    benchmark,
    eval_benchmark,
    input_benchmark,
    loop_benchmark,
)

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.")
_WHAT = flags.DEFINE_enum(
    "what",
    "step",
    ["step", "input", "loop", "eval"],
    "What to time (see above).",
)
_WORKDIR = flags.DEFINE_string(
    "workdir", "", "eval: the run whose latest checkpoint is evaluated."
)
_SECONDS = flags.DEFINE_float(
    "seconds", 5.0, "input and loop: how long to measure for (at least)."
)
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
  if _WHAT.value == "input":
    result = input_benchmark(_CONFIG.value, _SECONDS.value)
  elif _WHAT.value == "loop":
    result = loop_benchmark(_CONFIG.value, _SECONDS.value)
  elif _WHAT.value == "eval":
    result = eval_benchmark(_CONFIG.value, _WORKDIR.value)
  else:
    result = benchmark(
        _CONFIG.value, _REPEATS.value, _STEPS.value, _WARMUP.value
    )
  print(json.dumps(result))


if __name__ == "__main__":
  cli.run(main)
