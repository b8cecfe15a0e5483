"""The paper's reported numbers (its Table 1): top-1 %, MLP probe and kNN."""

import numpy as np

TABLE1 = {
    # method: {dataset: (MLP probe, kNN)}
    "random": {
        "mnist": (38.1, 46.1),
        "fashion_mnist": (49.8, 66.5),
        "celeb_a": (83.5, 80.0),
        "cifar10": (16.3, 13.1),
    },
    "simclr": {
        "mnist": (97.2, 97.2),
        "fashion_mnist": (74.9, 76.0),
        "celeb_a": (93.7, 91.6),
        "cifar10": (67.4, 64.0),
    },
    "moco": {
        "mnist": (94.6, 94.6),
        "fashion_mnist": (71.2, 76.9),
        "celeb_a": (89.7, 88.6),
        "cifar10": (56.4, 54.0),
    },
    "vicreg": {
        "mnist": (96.7, 97.0),
        "fashion_mnist": (73.2, 76.0),
        "celeb_a": (94.7, 92.7),
        "cifar10": (69.7, 68.3),
    },
    "vae": {
        "mnist": (97.8, 98.0),
        "fashion_mnist": (80.2, 83.7),
        "celeb_a": (89.0, 86.9),
        "cifar10": (30.3, 25.6),
    },
    "beta_vae": {
        "mnist": (98.0, 98.3),
        "fashion_mnist": (82.2, 86.1),
        "celeb_a": (93.4, 92.0),
        "cifar10": (36.6, 28.5),
    },
    "cr_vae": {
        "mnist": (97.7, 98.0),
        "fashion_mnist": (82.6, 86.4),
        "celeb_a": (93.1, 91.6),
        "cifar10": (36.8, 28.1),
    },
    "simvae": {
        "mnist": (98.4, 98.5),
        "fashion_mnist": (82.1, 86.5),
        "celeb_a": (95.6, 93.2),
        "cifar10": (51.8, 47.1),
    },
}

DATASET_NAMES = {
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "celeb_a": "CelebA",
    "cifar10": "CIFAR-10",
    "digits": "digits",
}


def paper_accuracy(method: str, dataset: str) -> dict:
  """Table 1's {"mlp_probe_acc": %, "knn_acc": %} of ``method`` on ``dataset``
  ({} if the paper does not report it)."""
  reported = TABLE1.get(method, {}).get(dataset)
  if reported is None:
    return {}
  return dict(zip(("mlp_probe_acc", "knn_acc"), reported))


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
              f"- {method}, {DATASET_NAMES[dataset]} {name}: {ours:.1f} vs the "
              f"paper's {theirs} ({ours - theirs:+.1f})"
          )
  return gaps
