"""Evaluation as named evaluators (``config.evals``), each at its cadence,
reported in one place."""

import json

import jax
import pytest

from conftest import tiny_digits_config

from simvae_jax import outputs, train
from simvae_jax.methods import autoencoder
from simvae_jax.evaluation import context, report, representations
from simvae_jax.experiment import Experiment


def run(workdir, **overrides):
  config = tiny_digits_config(
      **{
          "num_steps": 4,
          "eval.every_steps": 2,
          "eval.probe_epochs": 1,
          "posthoc_decoder.num_steps": 2,
          **overrides,
      }
  )
  results = train.train_and_evaluate(config, str(workdir))
  history = outputs.read_jsonl(str(workdir / "eval_history.jsonl"))
  return results, history


@pytest.mark.slow
def test_the_listed_evaluators_run_at_their_cadence(tmp_path):
  """The untrained encoder is evaluated once and repeated; images and
  latents only at the end; a discriminative method's reconstruction error
  only once the caller has trained its decoder."""
  results, history = run(
      tmp_path,
      method="simclr",
      evals=("representation", "latents", "untrained"),
  )
  assert [entry["step"] for entry in history] == [2, 4]
  periodic, final = history[0], history[-1]
  assert "recon_mse" not in periodic["label"]
  assert "recon_mse" in final["label"]
  assert periodic["untrained_encoder"] == final["untrained_encoder"]
  assert "untrained_encoder" in periodic["seconds"]
  assert "untrained_encoder" not in final["seconds"]  # run once, then reused
  assert (tmp_path / "latents.png").exists()
  assert not (tmp_path / "reconstructions.png").exists()  # images not listed
  assert results == json.loads((tmp_path / "eval.json").read_text())


def test_dropping_an_evaluator_drops_its_results_and_files(tmp_path):
  results, _ = run(tmp_path, evals=("representation",))
  assert set(results) == {"step", "label", "seconds"}
  assert "knn_acc" in results["label"] and "recon_mse" in results["label"]
  for name in ("latents.png", "reconstructions.png", "samples.png"):
    assert not (tmp_path / name).exists(), name


def test_the_reconstruction_error_decodes_the_test_representations(
    tmp_path, monkeypatch
):
  """Each evaluation runs the encoder over the probe and test splits once:
  the reconstruction error decodes the test representations already
  computed (a callback counts every image any compiled program encodes)."""
  encoded = []
  represent = autoencoder.GaussianAutoencoder.represent

  def counted(self, params, model_state, images):
    jax.debug.callback(lambda: encoded.append(images.shape[0]))
    return represent(self, params, model_state, images)

  monkeypatch.setattr(autoencoder.GaussianAutoencoder, "represent", counted)
  representations._compiled.cache_clear()  # programs traced with the callback
  results, history = run(tmp_path, evals=("representation",))
  representations._compiled.cache_clear()
  assert "recon_mse" in results["label"]
  data = context.EvalData.from_experiment(
      Experiment.from_config(tiny_digits_config())
  )
  batches = lambda split: -(-len(split) // 64)  # 64 images per CPU batch
  per_evaluation = 64 * (batches(data.probe) + batches(data.test))
  assert sum(encoded) == len(history) * per_evaluation


def test_an_unknown_evaluator_is_named(tmp_path):
  with pytest.raises(ValueError, match=r"Unknown evaluators \['probes'\]"):
    run(tmp_path, evals=("representation", "probes"))


def test_the_reporter_writes_scalars_and_tables_from_results():
  results = {
      "step": 7,
      "label": {"knn_acc": 0.5, "protocol": "text"},
      "untrained_encoder": {"label": {"knn_acc": 0.25}},
      "online": {"linear_probe_acc": 0.75, "note": report.ONLINE_NOTE},
      "fid": {"reconstructions": 12.0, "features": "classifier"},
  }
  assert report.scalars(results) == {
      "eval/knn_acc": 0.5,
      "online/test_acc": 0.75,
      "eval/fid_reconstructions": 12.0,
  }
  text = report.console_text(results, "simvae (step 7)", "the 5 test images")
  rows = [
      l for l in text.splitlines() if l.startswith("simvae") or "untrained" in l
  ]
  assert len(rows) == 2 and "0.5" in rows[0] and "0.25" in rows[1]
  assert "Online monitor, test accuracy 0.7500" in text
