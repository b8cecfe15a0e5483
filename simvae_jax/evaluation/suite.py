"""All representation metrics of one evaluation, one protocol.

The content task (the dataset's label) gets MLP and linear probes, kNN and
GMM clustering; every further task (CelebA attributes, style tasks) an MLP
probe, kNN and the majority baseline. All probes of the evaluation train
together in one program (``probes.train_probes``).
"""

from __future__ import annotations

import contextlib

import numpy as np

from simvae_jax.evaluation import clustering, knn, probes

PROTOCOL = (
    "frozen representations of un-augmented images; MLP/linear probes (Adam "
    "{lr:g}, batch {batch}, standardised inputs) pick their epoch and kNN its k on a "
    "{val:.0%} validation split of train (seed {seed}); GMM (full covariance, "
    "components = classes, best of {inits} k-means initialisations) and its Hungarian "
    "class matching are fitted on train; every test number is computed once, "
    "at those choices"
)
SCORES = ("mlp_probe_acc", "knn_acc", "majority_acc")


def _untimed(_: str):
  return contextlib.nullcontext()


def majority_accuracy(
    train_classes: np.ndarray, test_classes: np.ndarray
) -> float:
  """Test accuracy of always predicting the most frequent training class."""
  majority = np.bincount(train_classes).argmax()
  return float(np.mean(test_classes == majority))


def mean_over(results: dict, prefix: str) -> dict:
  """Mean scores of the tasks whose names start with ``prefix``."""
  chosen = [v for k, v in results.items() if k.startswith(prefix)]
  return {
      metric: float(np.mean([r[metric] for r in chosen])) for metric in SCORES
  }


def evaluate(content, tasks: dict, eval_config, seed: int, timer=_untimed):
  """Metrics of the content task and of each further task.

  Args:
    content: (train representations [N, D], train labels [N], test
      representations [M, D], test labels [M]).
    tasks: {task name: the same four arrays for that task}.
    timer: ``timer(component)`` is a context manager timing each part
      ("probes", "knn", "gmm"); none by default.

  Returns:
    (content metrics: ``mlp_probe_*``, ``linear_probe_*``, ``knn_*``,
    ``gmm_*`` and ``protocol``; {task name: mlp_probe_acc, knn_acc,
    majority_acc, num_train, num_test}, with ``attributes_mean`` and
    ``style_mean`` over the ``attribute/`` and ``style/`` tasks present).
    Accuracies are fractions.
  """
  width = content[0].shape[1]
  problems = [
      probes.Problem(*content, hidden=width),
      probes.Problem(*content, hidden=0),
      *(probes.Problem(*data, hidden=width) for data in tasks.values()),
  ]
  with timer("probes"):
    results = probes.train_probes(
        problems, **probes.settings(eval_config, seed)
    )
  metrics = {}
  for name, result in zip(("mlp_probe", "linear_probe"), results):
    metrics.update({f"{name}_{key}": value for key, value in result.items()})
  neighbours = dict(
      ks=tuple(eval_config.knn_ks),
      val_fraction=eval_config.val_fraction,
      seed=seed,
  )
  with timer("knn"):
    metrics.update(knn.knn_evaluate(*content, **neighbours))
  with timer("gmm"):
    metrics.update(
        clustering.gmm_evaluate(
            *content,
            seed=seed,
            num_inits=eval_config.get("gmm_inits", 3),
            backend=eval_config.get("gmm_backend", "auto"),
        )
    )
  metrics["protocol"] = PROTOCOL.format(
      lr=eval_config.probe_learning_rate,
      batch=eval_config.probe_batch_size,
      val=eval_config.val_fraction,
      seed=seed,
      inits=eval_config.get("gmm_inits", 3),
  )
  task_metrics = {}
  for (name, data), probe in zip(tasks.items(), results[2:]):
    train_x, train_y, test_x, test_y = data
    with timer("knn"):
      knn_acc = knn.knn_evaluate(*data, **neighbours)["knn_acc"]
    task_metrics[name] = {
        "mlp_probe_acc": probe["acc"],
        "knn_acc": knn_acc,
        "majority_acc": majority_accuracy(train_y, test_y),
        "num_train": int(len(train_y)),
        "num_test": int(len(test_y)),
    }
  for prefix, mean in (
      ("attribute/", "attributes_mean"),
      ("style/", "style_mean"),
  ):
    if any(name.startswith(prefix) for name in task_metrics):
      task_metrics[mean] = mean_over(task_metrics, prefix)
  return metrics, task_metrics
