"""The device GMM against scikit-learn's on a run's representations.

python experiments/gmm_check.py --config=configs/cifar10.py:quick \
    --config.data.source=npz --config.data.path=... --workdir=RUN --seeds=0,1,2

Computes the train and test representations of the latest checkpoint in
``--workdir`` once, then per seed fits both mixtures on train (full
covariance, components = classes, reg_covar 1e-5) and scores test as the
evaluation does (accuracy after Hungarian matching on train, NMI, ARI):

* ``sklearn``: the evaluation's earlier call, ``GaussianMixture(covariance_type=
  "full", random_state=seed, reg_covar=1e-5)`` on float64 (one k-means
  initialisation);
* ``jax``: ``clustering.gmm_evaluate`` (evaluation/gmm.py: float32 EM on the
  devices, best of 3 k-means initialisations).

Prints one JSON line per (implementation, seed) with its seconds (fit and
predict; JAX's first call includes compilation, reported apart) and a
summary line: mean +/- s.e. over seeds of each metric, and the speed-up.
"""

from __future__ import annotations

import functools
import json
import statistics
import time

import numpy as np
from absl import flags
from ml_collections import config_flags
from sklearn import metrics
from sklearn.mixture import GaussianMixture

from simvae_jax import cli, train
from simvae_jax.benchmarking import matmul_gflop_per_s
from simvae_jax.data import sources
from simvae_jax.evaluation import clustering, representations
from simvae_jax.evaluation.common import count_classes
from simvae_jax.experiment import Experiment

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "The run to represent.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of both fits.")
flags.mark_flags_as_required(["config", "workdir"])


def sklearn_gmm(train_x, train_y, test_x, test_y, seed: int) -> dict:
  """The evaluation's scikit-learn call before the device GMM."""
  num_classes = count_classes(train_y, test_y)
  mixture = GaussianMixture(
      num_classes, covariance_type="full", random_state=seed, reg_covar=1e-5
  ).fit(np.asarray(train_x, np.float64))
  mapping = clustering.hungarian_mapping(
      train_y, mixture.predict(train_x), num_classes, num_classes
  )
  clusters = mixture.predict(np.asarray(test_x, np.float64))
  return {
      "gmm_acc": float(np.mean(mapping[clusters] == test_y)),
      "gmm_nmi": float(metrics.normalized_mutual_info_score(test_y, clusters)),
      "gmm_ari": float(metrics.adjusted_rand_score(test_y, clusters)),
  }


def summary(rows: list[dict]) -> dict:
  """Mean and standard error over seeds of each metric and of the time."""
  out = {}
  for key in ("gmm_acc", "gmm_nmi", "gmm_ari", "seconds"):
    values = [row[key] for row in rows]
    error = (
        statistics.stdev(values) / len(values) ** 0.5
        if len(values) > 1
        else 0.0
    )
    out[key] = [round(statistics.mean(values), 4), round(error, 4)]
  return out


def main(argv):
  del argv
  config = _CONFIG.value
  experiment = Experiment.from_config(config)
  state = train.restore_latest(experiment, _WORKDIR.value)
  test_source = sources.load_source(config.data, "test")
  represent = lambda source: representations.compute_representations(
      experiment.method,
      state.params,
      state.model_state,
      source,
      config.augment.binarize,
      experiment.mesh,
  )
  data = (
      represent(experiment.probe_source),
      sources.targets(experiment.probe_source)["label"],
      represent(test_source),
      sources.targets(test_source)["label"],
  )
  started = time.perf_counter()
  clustering.gmm_evaluate(*data, seed=int(_SEEDS.value[0]), backend="device")
  first_call = time.perf_counter() - started
  rows = {"sklearn": [], "jax": []}
  for seed in map(int, _SEEDS.value):
    for name, fit in (
        ("sklearn", sklearn_gmm),
        ("jax", functools.partial(clustering.gmm_evaluate, backend="device")),
    ):
      started = time.perf_counter()
      result = fit(*data, seed=seed)
      rows[name].append({**result, "seconds": time.perf_counter() - started})
      print(
          json.dumps({"implementation": name, "seed": seed, **rows[name][-1]}),
          flush=True,
      )
  sklearn, ours = summary(rows["sklearn"]), summary(rows["jax"])
  print(
      json.dumps(
          {
              "config": f"{config.data.name} {config.method} step {int(state.step)}",
              "points": list(data[0].shape),
              "sklearn": sklearn,
              "jax": ours,
              "jax_first_call_s": round(first_call, 2),
              "speedup": round(sklearn["seconds"][0] / ours["seconds"][0], 1),
              "matmul_gflop_per_s": round(matmul_gflop_per_s(), 1),
          }
      )
  )


if __name__ == "__main__":
  cli.run(main)
