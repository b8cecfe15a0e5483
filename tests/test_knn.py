"""kNN: equals scikit-learn, separates clusters, falls to chance on noise."""

import jax
import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from simvae_jax.evaluation import knn


def clusters(num_per_class=60, num_classes=4, dim=6, spread=0.3, seed=0):
  """Gaussian clusters around fixed centres; ``seed`` draws new points only."""
  centres = np.random.default_rng(1234).normal(0, 5, (num_classes, dim))
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(num_classes), num_per_class)
  points = centres[labels] + rng.normal(0, spread, (len(labels), dim))
  order = rng.permutation(len(labels))
  return points[order].astype(np.float32), labels[order]


@pytest.mark.parametrize("k", [1, 4, 7])
def test_predictions_equal_scikit_learn(k):
  x, y = clusters(spread=3.0)  # overlapping, so k matters
  queries, _ = clusters(num_per_class=25, spread=3.0, seed=1)
  expected = KNeighborsClassifier(n_neighbors=k).fit(x, y).predict(queries)
  np.testing.assert_array_equal(knn.knn_predict(x, y, queries, k), expected)


def test_chunking_does_not_change_results():
  x, y = clusters(spread=3.0)
  queries, _ = clusters(num_per_class=25, spread=3.0, seed=1)
  whole = knn.nearest_labels(x, y, queries, 5, chunk_size=1000)
  chunked = knn.nearest_labels(x, y, queries, 5, chunk_size=7)
  np.testing.assert_array_equal(whole, chunked)


def test_separable_clusters_are_classified_perfectly():
  x, y = clusters()
  test_x, test_y = clusters(num_per_class=20, seed=1)
  result = knn.knn_evaluate(x, y, test_x, test_y, ks=(1, 3, 5))
  assert result["knn_acc"] == 1.0 and result["knn_k"] in (1, 3, 5)


def test_shuffled_labels_give_chance():
  x, y = clusters(num_per_class=300)
  test_x, test_y = clusters(num_per_class=100, seed=2)
  rng = np.random.default_rng(0)
  result = knn.knn_evaluate(
      x, rng.permutation(y), test_x, test_y, ks=(1, 5, 15)
  )
  assert abs(result["knn_acc"] - 0.25) < 0.08


def test_k_is_chosen_on_validation_not_test():
  x, y = clusters(spread=2.5)
  test_x, test_y = clusters(num_per_class=30, spread=2.5, seed=3)
  result = knn.knn_evaluate(
      x, y, test_x, test_y, ks=(1, 9), val_fraction=0.2, seed=0
  )
  fit, val = knn.validation_split(len(x), 0.2, 0)
  val_accs = {
      k: np.mean(knn.knn_predict(x[fit], y[fit], x[val], k) == y[val])
      for k in (1, 9)
  }
  assert result["knn_k"] == max(val_accs, key=lambda k: (val_accs[k], -k))
  assert result["knn_val_acc"] == pytest.approx(val_accs[result["knn_k"]])


def test_k_larger_than_train_is_an_error():
  x, y = clusters(num_per_class=2)
  with pytest.raises(ValueError, match="exceeds"):
    knn.knn_predict(x, y, x, 50)


def test_distances_run_at_full_float32_precision_on_every_backend():
  """GPUs and TPUs multiply float32 at TF32 / bfloat16 by default, where
  |q|^2 - 2 q.t + |t|^2 cancels; the product asks for HIGHEST (on CPU, where
  float32 is exact anyway, the program is what can be checked)."""
  points, labels = clusters()
  program = jax.make_jaxpr(knn._nearest_labels, static_argnums=(3,))(
      points, labels, points[:4], 3
  )
  text = str(program)  # the jitted function's program is nested inside
  assert text.count("dot_general") == 1
  assert "precision=(Precision.HIGHEST, Precision.HIGHEST)" in text
