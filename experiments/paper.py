"""The paper's reported numbers (its Table 1): top-1 %, MLP probe and kNN,
from each dataset's config file (``PAPER_TABLE1`` in ``configs/<dataset>.py``).
"""

import numpy as np

from simvae_jax import configs


def paper_accuracy(method: str, dataset: str) -> dict:
  """Table 1's {"mlp_probe_acc": %, "knn_acc": %} of ``method`` on ``dataset``
  ({} if the paper does not report it)."""
  reported = configs.module(dataset).PAPER_TABLE1.get(method)
  if reported is None:
    return {}
  return dict(zip(("mlp_probe_acc", "knn_acc"), reported))


def dataset_name(dataset: str) -> str:
  """The dataset's name in reports, e.g. 'CIFAR-10' for cifar10."""
  return configs.load(dataset).data.display_name or dataset


def paper_cell(method: str, dataset: str) -> str:
  """Table 1's "MP / kNN" of ``method`` on ``dataset`` for a markdown table
  ("—" if the paper does not report it)."""
  return " / ".join(map(str, paper_accuracy(method, dataset).values())) or "—"


def gaps_over(finals: dict, threshold: float = 1.0) -> list[str]:
  """Where our mean MLP-probe or kNN accuracy differs from Table 1 by more than
  ``threshold`` points.

  Args:
    finals: method -> dataset -> list (one per seed) of ``eval.json`` dicts,
      whose ``label`` holds ``mlp_probe_acc`` and ``knn_acc`` as fractions.
  Returns:
    One markdown bullet per such (method, dataset, metric), in ``finals`` order.
  """
  gaps = []
  for method, per_dataset in finals.items():
    for dataset, results in per_dataset.items():
      reported = paper_accuracy(method, dataset)
      for name, (metric, theirs) in zip(("MP", "KNN"), reported.items()):
        ours = 100 * float(np.mean([r["label"][metric] for r in results]))
        if abs(ours - theirs) > threshold:
          gaps.append(
              f"- {method}, {dataset_name(dataset)} {name}: {ours:.1f} vs the "
              f"paper's {theirs} ({ours - theirs:+.1f})"
          )
  return gaps
