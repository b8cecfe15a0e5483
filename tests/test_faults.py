"""Faults: non-finite steps, SIGTERM, unreadable checkpoints; determinism and
the TensorBoard writer."""

import dataclasses
import logging
import os
import pathlib
import signal
import struct

import grain
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simvae_jax import checkpointing, outputs, posthoc_decoder, train
from simvae_jax.data import pipeline, sources
from simvae_jax.train import Experiment

from conftest import (
    digits_command,
    final_digits_state,
    params_equal,
    run,
    start,
    tiny_digits_config,
    train_digits,
    wait_for,
)

NAN_STEP = 3  # the step whose batch is all black


@dataclasses.dataclass(frozen=True)
class NaNOnBlackBatch:
  """Wraps a method: its loss is NaN on a batch of all-black images."""

  inner: object

  def __getattr__(self, name):
    return getattr(self.inner, name)

  def loss(self, params, model_state, method_state, views, rng):
    loss, aux = self.inner.loss(params, model_state, method_state, views, rng)
    return jnp.where(jnp.max(views) == 0, jnp.nan, loss), aux


def experiment_with_a_nan_batch(**overrides):
  """Digits in a fixed order (no shuffle) with batch NAN_STEP all black."""
  config = tiny_digits_config(
      batch_size=32, num_steps=8, log_every=4, checkpoint_every=2, **overrides
  )
  experiment = Experiment.from_config(config)
  images, labels = sources.read_all(experiment.train_source)
  images = images.copy()
  first = (NAN_STEP - 1) * 32
  images[first : first + 32] = 0
  ordered = sources.ArraySource(images, labels)
  experiment.train_dataset = lambda: (
      grain.MapDataset.source(ordered)
      .map(lambda r: {"image": r["image"], "label": np.int32(r["label"])})
      .batch(32, drop_remainder=True)
      .repeat()
  )
  experiment.method = NaNOnBlackBatch(experiment.method)
  return experiment


def test_nonfinite_step_stops_the_run_naming_it(workdir):
  experiment = experiment_with_a_nan_batch()
  with pytest.raises(train.NonFiniteError) as error:
    train.train(experiment, workdir)
  message = str(error.value)
  assert f"at step {NAN_STEP}" in message and "loss" in message
  assert "last good checkpoint is step 2" in message
  assert "skip_nonfinite" in message
  # Nothing was saved after the bad step (checks run before every save).
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2"]


@pytest.mark.slow
def test_skip_nonfinite_skips_the_update_and_counts_it(workdir):
  experiment = experiment_with_a_nan_batch(skip_nonfinite=True)
  state = train.train(experiment, workdir)
  assert int(state.step) == 8
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.params))
  metrics = outputs.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [m["step"] for m in metrics] == [4, 8]
  assert [m["nonfinite_steps"] for m in metrics] == [1, 0]
  assert {"grad_norm", "param_norm", "learning_rate"} <= set(metrics[0])


@pytest.mark.slow
def test_sigterm_saves_exits_zero_and_resumes_exactly(tmp_path):
  workdir = tmp_path / "preempted"
  process = start(digits_command(workdir, 600))
  wait_for(workdir / "checkpoints" / "100", process)
  process.send_signal(signal.SIGTERM)
  stdout, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-3000:]
  assert "SIGTERM received: stopped after step" in stdout
  assert "Re-run the same command" in stdout
  stopped = int(stdout.split("stopped after step ")[1].split()[0])
  assert 100 <= stopped < 600
  assert (workdir / "checkpoints" / str(stopped)).exists()
  assert not (workdir / "eval.json").exists()  # no evaluation of a partial run

  resumed = run(digits_command(workdir, 600), timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  straight_dir = tmp_path / "straight"
  straight = train_digits(straight_dir, 600)
  final = final_digits_state(workdir, 600)
  assert params_equal(straight.params, final.params)
  assert outputs.read_jsonl(str(straight_dir / "metrics.jsonl")) == (
      outputs.read_jsonl(str(workdir / "metrics.jsonl"))
  )


@pytest.mark.slow
def test_unreadable_latest_checkpoint_falls_back_to_the_previous(tmp_path):
  config = tiny_digits_config(num_steps=8, checkpoint_every=4)
  workdir = tmp_path / "run"
  straight = train.train(Experiment.from_config(config), str(tmp_path / "ok"))
  train.train(Experiment.from_config(config), str(workdir))
  latest = workdir / "checkpoints" / "8"
  for path in latest.rglob("*"):  # corrupt every file of step 8
    if path.is_file() and path.stat().st_size > 0:
      path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  resumed = train.train(Experiment.from_config(config), str(workdir))
  assert int(resumed.step) == 8
  assert params_equal(straight.params, resumed.params)
  assert (
      workdir / "checkpoints" / "8.unreadable"
  ).is_dir()  # kept, not deleted
  assert (workdir / "checkpoints" / "8").is_dir()  # written again


def test_a_read_only_checkpointer_opens_without_warnings(tmp_path, caplog):
  """``--mode=eval`` and ``simvae_jax.load`` open the checkpoints read-only on
  purpose: Orbax's warnings about it are not shown to the user."""
  with caplog.at_level(logging.INFO):
    checkpointing.Checkpointer(str(tmp_path), read_only=True).close()
  shown = [
      r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
  ]
  assert shown == []
  # The filter is gone afterwards: Orbax's other messages still get through.
  assert not logging.getLogger("absl").filters


def test_same_config_and_seed_give_bitwise_identical_metrics(tmp_path):
  config = tiny_digits_config(num_steps=12, log_every=3)
  for name in ("first", "second"):
    train.train(Experiment.from_config(config), str(tmp_path / name))
  first = (tmp_path / "first" / "metrics.jsonl").read_text()
  assert first and first == (tmp_path / "second" / "metrics.jsonl").read_text()


def read_event_tags(directory) -> set:
  """Scalar and image tags in TensorBoard event files (TFRecord framing:
  length, crc, Event proto, crc)."""
  from tensorboardX.proto import event_pb2

  tags = set()
  for path in directory.glob("events.out.tfevents.*"):
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset : offset + 8])
      event = event_pb2.Event.FromString(
          data[offset + 12 : offset + 12 + length]
      )
      tags |= {value.tag for value in event.summary.value}
      offset += 12 + length + 4
  return tags


@pytest.mark.slow
def test_tensorboard_writer_logs_scalars_and_images(workdir):
  pytest.importorskip("tensorboardX")
  config = tiny_digits_config(
      num_steps=4, log_every=2, tensorboard=True, **{"eval.probe_epochs": 2}
  )
  train.train_and_evaluate(config, workdir)
  tags = read_event_tags(pathlib.Path(workdir) / "tensorboard")
  assert {"loss", "learning_rate", "grad_norm", "param_norm"} <= tags
  assert {"reconstructions", "samples", "eval/knn_acc"} <= tags
  # metrics.jsonl keeps its contract: training scalars only.
  metrics = outputs.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [m["step"] for m in metrics] == [2, 4]


def test_a_checkpoint_with_the_decoder_in_its_state_still_restores(tmp_path):
  """Checkpoints written while the post-hoc decoder lived in the train state
  (its parameters and optimiser moments) restore into today's state: the
  decoder's leaves are dropped, every other leaf is read, and nothing is set
  aside as unreadable."""
  experiment = Experiment.from_config(
      tiny_digits_config(method="simclr", **{"optimizer.name": "adamw"})
  )
  state = experiment.initial_state()
  moved = jax.tree.map(lambda x: x + 1.0, state.params)  # "trained" params
  decoder, _ = posthoc_decoder.initial_decoder(experiment)
  old_params = {**moved, "decoder": decoder}
  old = state.replace(
      step=jnp.int32(3),
      params=old_params,
      opt_state=experiment.optimizer.init(old_params),
  )
  iterator = pipeline.make_train_iterator(experiment.train_dataset())
  checkpointer = experiment.checkpointer(str(tmp_path))
  checkpointer.save(3, old, iterator)
  checkpointer.close()
  checkpointer = experiment.checkpointer(str(tmp_path))
  restored, step = checkpointer.restore(experiment.abstract_state(), iterator)
  checkpointer.close()
  assert step == 3 and int(restored.step) == 3
  assert set(restored.params) == {"encoder", "head"}
  assert params_equal(restored.params, moved)
  assert jax.tree.structure(restored.opt_state) == jax.tree.structure(
      state.opt_state
  )
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["3"]
