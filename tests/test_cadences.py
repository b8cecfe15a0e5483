"""Restarts and cadences for fast devices: checkpoints by time, the persistent
compilation cache, and metrics on an object store written without appends."""

import os
import pathlib
import sys

import pytest
from etils import epath

from simvae_jax import checkpointing, compilation_cache, outputs, train
from simvae_jax.train import Experiment

from conftest import digits_command, run, tiny_digits_config


def test_a_checkpoint_is_due_by_count_or_by_time_at_log_steps(monkeypatch):
  now = [0.0]
  monkeypatch.setattr(checkpointing.time, "monotonic", lambda: now[0])
  cadence = checkpointing.Cadence(steps=100, minutes=10)
  assert cadence.due(100, at_log=False)  # by count
  assert not cadence.due(50, at_log=True)
  now[0] = 601.0
  assert not cadence.due(51, at_log=False)  # the clock is read at logs only
  assert cadence.due(60, at_log=True)
  cadence.saved()
  assert not cadence.due(70, at_log=True)
  off = checkpointing.Cadence(steps=0, minutes=0)
  now[0] = 1e9
  assert not any(off.due(step, at_log=True) for step in range(1, 1000))


@pytest.mark.parametrize(
    "every, minutes, expected",
    [(0, 1e-9, [2, 4, 6, 8]), (0, 0, [8]), (3, 0, [3, 6, 8])],
)
def test_checkpoints_land_where_the_cadence_says(
    workdir, every, minutes, expected
):
  config = tiny_digits_config(
      num_steps=8,
      log_every=2,
      checkpoint_every=every,
      checkpoint_every_minutes=minutes,
      max_checkpoints=10,
  )
  train.train(Experiment.from_config(config), workdir)
  saved = os.listdir(pathlib.Path(workdir) / "checkpoints")
  assert sorted(int(step) for step in saved) == expected


@pytest.mark.slow
def test_a_second_start_takes_its_programs_from_the_compilation_cache(
    tmp_path,
):
  cache = tmp_path / "xla"
  env = {
      k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"
  }
  # Every program is cached, however long it took to compile: with a minimum
  # (the suite's 0.2 s), a program compiled just under it in the first start
  # and just over it in the second (a busy machine) was a new entry.
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  command = lambda name: digits_command(
      tmp_path / name,
      20,
      f"--config.compilation_cache_dir={cache}",
      "--config.eval.probe_epochs=1",
  )
  first = run(command("first"), env=env)
  assert first.returncode == 0, first.stderr[-3000:]
  entries = sorted(p.name for p in cache.iterdir())
  assert any("step" in name for name in entries), entries
  # The same run started again (e.g. after its machine was replaced):
  # every program it compiles, the step included, comes from the cache,
  # which gains no entry.
  second = run(command("second"), env=env)
  assert second.returncode == 0, second.stderr[-3000:]
  assert sorted(p.name for p in cache.iterdir()) == entries


@pytest.mark.parametrize("minimum", [None, "0.5"])
def test_the_cache_keeps_programs_compiled_in_a_tenth_of_a_second(
    tmp_path, minimum
):
  """A run's cache keeps the evaluation's programs (0.1-1 s to compile each,
  under JAX's 1 s default) unless the environment sets the minimum."""
  env = {
      k: v
      for k, v in os.environ.items()
      if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))
  }
  if minimum is not None:
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = minimum
  script = (
      "import jax\n"
      "from simvae_jax import compilation_cache\n"
      f"print(compilation_cache.enable({str(tmp_path)!r}))\n"
      "print(jax.config.jax_persistent_cache_min_compile_time_secs)\n"
  )
  result = run([sys.executable, "-c", script], env=env)
  assert result.returncode == 0, result.stderr[-2000:]
  directory, seconds = result.stdout.split()
  assert directory == str(tmp_path)
  expected = compilation_cache.MIN_COMPILE_SECONDS if minimum is None else 0.5
  assert float(seconds) == expected


def test_metrics_on_an_object_store_are_written_whole_never_appended(tmp_path):
  """An object store has no append: the log keeps its lines and writes the
  object at most every flush_every_s seconds and at close."""
  local = lambda path: str(path).replace("gs://bucket", str(tmp_path))
  writes = []

  def open_object(open_file, path, mode="r", **kwargs):
    assert "a" not in mode, "object stores cannot append"
    if "w" in mode:
      writes.append(str(path))
    return open_file(local(path), mode, **kwargs)

  with epath.testing.mock_epath(
      open=open_object, exists=lambda exists, path: exists(local(path))
  ):
    log = outputs.JsonLinesLog("gs://bucket/metrics.jsonl", flush_every_s=3600)
    for step in range(1, 101):
      log.write(step, {"loss": float(step)})
    assert len(writes) == 1  # created; the hundred records wait in memory
    log.close()
    assert len(writes) == 2
    reopened = outputs.JsonLinesLog("gs://bucket/metrics.jsonl")
    reopened.drop_after(40)  # a resumed run
    reopened.write(41, {"loss": -1.0})
  lines = outputs.read_jsonl(str(tmp_path / "metrics.jsonl"))
  assert [line["step"] for line in lines] == list(range(1, 42))
  assert lines[-1]["loss"] == -1.0
