"""All representation metrics of one classification task, one protocol."""

from __future__ import annotations

from simvae_jax.evaluation import clustering, knn, probes

PROTOCOL = (
    "frozen representations of un-augmented images; MLP/linear probes (Adam "
    "{lr:g}, batch {batch}, standardised inputs) pick their epoch and kNN its k on a "
    "{val:.0%} validation split of train (seed {seed}); GMM (full covariance, "
    "components = classes) and its Hungarian class matching are fitted on train; "
    "every test number is computed once, at those choices"
)


def evaluate_task(
    train_repr, train_y, test_repr, test_y, eval_config, seed: int
) -> dict:
  """MLP probe, linear probe, kNN and GMM metrics; accuracies as fractions."""
  common = probes.settings(eval_config, seed)
  result = {}
  for name, hidden in (("mlp_probe", train_repr.shape[1]), ("linear_probe", 0)):
    probe = probes.train_probe(
        train_repr, train_y, test_repr, test_y, hidden=hidden, **common
    )
    result.update({f"{name}_{key}": value for key, value in probe.items()})
  result.update(
      knn.knn_evaluate(
          train_repr,
          train_y,
          test_repr,
          test_y,
          ks=tuple(eval_config.knn_ks),
          val_fraction=eval_config.val_fraction,
          seed=seed,
      )
  )
  result.update(
      clustering.gmm_evaluate(train_repr, train_y, test_repr, test_y, seed=seed)
  )
  result["protocol"] = PROTOCOL.format(
      lr=eval_config.probe_learning_rate,
      batch=eval_config.probe_batch_size,
      val=eval_config.val_fraction,
      seed=seed,
  )
  return result
