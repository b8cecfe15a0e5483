"""Times the released PyTorch code's SimVAE training step, to compare with
``benchmark.py`` side by side on the same machine.

python experiments/released_code_step.py --checkout=PATH --dataset=mnist \
    --num_views=2 [--repeats=7 --steps_per_repeat=20]

``PATH`` is a checkout of the authors' repository (github.com/alicebizeul/
simvae; its ``src`` package is imported from there); run it with a Python
that has torch and scikit-learn (not dependencies of this package). The step
is theirs as ``main.py`` runs it: ``SelfSup`` with the MNIST MLP (784-2000-
500-500-2x10) or the CIFAR-10 ResNet networks, its loss (reconstruction,
entropy, prior), ``backward`` and Adam 8e-5 (eps 1e-4), on 64 x J random
inputs (no data loading or augmentation, which its step does not include).
Prints one JSON line with the median step time and torch's float32 matmul
GFLOP/s in the same process as a yardstick.

With ``--alternate`` (a Python with torch and this package), this package's
step for the same setting (``configs/<dataset>.py:authors``, J views, its
on-device augmentation included, random images) runs in the same process,
the two steps alternating in rounds of ``--steps_per_repeat``: on a shared
machine whose speed drifts from minute to minute, each round's ratio compares
the two under the same conditions. The line then adds our median step time
and the median over rounds of their time / ours (``ours_ahead_by``).
"""

import argparse
import importlib.util
import json
import statistics
import sys
import time
import types

import torch


def _without_torchvision() -> None:
  """Their utils import ``torchvision.utils.save_image`` (for figures only);
  where torchvision is missing, a stand-in lets the model import."""
  if importlib.util.find_spec("torchvision") is None:
    stand_in = types.ModuleType("torchvision")
    stand_in.utils = types.ModuleType("torchvision.utils")
    stand_in.utils.save_image = lambda *args, **kwargs: None
    sys.modules["torchvision"] = stand_in
    sys.modules["torchvision.utils"] = stand_in.utils


def make_step(checkout: str, dataset: str, num_views: int):
  sys.path.insert(0, checkout)
  _without_torchvision()
  from src.model import models  # pylint: disable=import-outside-toplevel

  shapes = {"mnist": (784, 1, 10), "cifar10": (3072, 3, 64)}
  x_dim, channels, latent = shapes[dataset]
  resnet = dataset != "mnist"
  net_args = {
      "x_dim": x_dim,
      "m_dims": None if resnet else [500, 500, 2000],
      "resnet18": resnet,
      "n_channels": channels,
      "bn": True,
      "c_dim": latent,
  }
  model = models.SelfSup(
      net_args,
      {"log_var_x": -4.6, "binarise": dataset == "mnist"},
      {"var_z_y": 0.15, "num_data": 50000, "p_y_prior": "gaussian"},
      num_sim=num_views,
      seed=0,
  )
  optimizer = torch.optim.Adam(model.parameters(), lr=8e-5, eps=1e-4)
  side = int((x_dim // channels) ** 0.5)
  shape = (
      (64 * num_views, channels, side, side)
      if resnet
      else (64 * num_views, x_dim)
  )
  data = torch.rand(shape)

  def step():
    encoded, decoded, latents = model(data)
    recon, entropy, prior = model.loss(data, encoded, decoded, latents)
    (recon + prior + entropy).backward()
    optimizer.step()
    optimizer.zero_grad()

  return step


def make_our_step(dataset: str, num_views: int):
  """This package's compiled step for ``configs/<dataset>.py:authors`` at J
  views on 64 random images (no data is loaded), as ``benchmark.py`` times
  it (``benchmarking.unlogged_dispatch``: one step per call)."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from simvae_jax import benchmarking, configs  # pylint: disable=import-outside-toplevel
  from simvae_jax.experiment import Experiment  # pylint: disable=import-outside-toplevel

  config = configs.load(dataset, "authors")
  config.num_views = num_views
  experiment = Experiment.from_config(
      config, image_shape=config.data.image_shape
  )
  images = np.random.default_rng(0).integers(
      0, 256, (config.batch_size, *config.data.image_shape), np.uint8
  )
  dispatch, _ = benchmarking.unlogged_dispatch(experiment, images)
  state = experiment.initial_state()

  def step():
    nonlocal state
    state, metrics = dispatch(state)
    return metrics

  return step, jax.block_until_ready


def timed(step, count: int, wait=lambda result: None) -> float:
  """Seconds per step over ``count`` steps (``wait`` on the last result)."""
  started = time.perf_counter()
  for _ in range(count):
    result = step()
  wait(result)
  return (time.perf_counter() - started) / count


def matmul_gflop_per_s(size: int = 2048, repeats: int = 7) -> float:
  a = torch.randn(size, size)
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    a @ a
    times.append(time.perf_counter() - started)
  return 2 * size**3 / statistics.median(times) / 1e9


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--checkout", required=True)
  parser.add_argument(
      "--dataset", default="mnist", choices=["mnist", "cifar10"]
  )
  parser.add_argument("--num_views", type=int, default=2)
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--steps_per_repeat", type=int, default=20)
  parser.add_argument(
      "--alternate",
      action="store_true",
      help="Alternate with this package's step in the same process.",
  )
  args = parser.parse_args()
  step = make_step(args.checkout, args.dataset, args.num_views)
  ours, wait = (
      make_our_step(args.dataset, args.num_views)
      if args.alternate
      else (None, None)
  )
  for _ in range(3):
    step()
    if ours:
      wait(ours())
  times, our_times = [], []
  for _ in range(args.repeats):
    times.append(timed(step, args.steps_per_repeat))
    if ours:
      our_times.append(timed(ours, args.steps_per_repeat, wait))
  result = {
      "code": "released PyTorch",
      "torch": torch.__version__,
      "threads": torch.get_num_threads(),
      "dataset": args.dataset,
      "num_views": args.num_views,
      "median_step_ms": round(1e3 * statistics.median(times), 3),
      "min_step_ms": round(1e3 * min(times), 3),
  }
  if ours:
    ratios = [theirs / our for theirs, our in zip(times, our_times)]
    result |= {
        "ours_median_step_ms": round(1e3 * statistics.median(our_times), 3),
        "ours_min_step_ms": round(1e3 * min(our_times), 3),
        "ours_ahead_by": round(statistics.median(ratios), 3),
        "ours_ahead_by_per_round": [round(r, 3) for r in ratios],
    }
  result["matmul_gflop_per_s"] = round(matmul_gflop_per_s(), 1)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
