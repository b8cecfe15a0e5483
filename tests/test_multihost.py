"""Multi-host runs for real: 2 processes x 4 CPU devices on loopback (gloo
collectives), interrupted mid-run (both SIGKILLed, or one sent SIGTERM) and
resumed, equal a 1-process 8-device run."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from simvae_jax import outputs, train
from simvae_jax.train import Experiment

from conftest import REPO, load_repo_config

# Every test here starts processes: the fast tier leaves them out.
pytestmark = pytest.mark.slow

# Long enough that a SIGTERM after the first checkpoint (passed on in about a
# second) stops the run well before its end.
STEPS, CHECKPOINT_EVERY = 48, 4


def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def overrides(method):
  return [
      f"--config.method={method}",
      f"--config.num_steps={STEPS}",
      f"--config.checkpoint_every={CHECKPOINT_EVERY}",
      "--config.log_every=2",
      "--config.batch_size=32",
      "--config.eval.probe_epochs=1",
      "--config.eval.compare_untrained=False",
      "--config.posthoc_decoder.num_steps=4",
  ]


def launch(workdir, method, devices, process=None, port=None):
  command = [
      sys.executable,
      "-m",
      "simvae_jax.main",
      "--config=configs/digits.py",
      f"--workdir={workdir}",
      *overrides(method),
  ]
  if process is not None:
    command += [
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        f"--process_id={process}",
    ]
  env = dict(
      os.environ,
      JAX_PLATFORMS="cpu",
      XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
  )
  return subprocess.Popen(
      command,
      cwd=REPO,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
  )


def finish(processes):
  results = [p.communicate(timeout=600) for p in processes]
  for process, (_, stderr) in zip(processes, results):
    assert process.returncode == 0, stderr[-3000:]
  return results


def final_params(workdir, method):
  config = load_repo_config("digits")
  config.method, config.num_steps, config.batch_size = method, STEPS, 32
  config.checkpoint_every = CHECKPOINT_EVERY
  # One device here: the checkpoint is resharded onto it.
  state = train.restore_latest(Experiment.from_config(config), str(workdir))
  return jax.device_get(state.params)


# (method, interruption): both processes SIGKILLed, or SIGTERM to process 1
# only, which JAX's preemption service passes on to process 0.
RUNS = [("simvae", "SIGKILL both"), ("simclr", "SIGTERM to process 1")]


@pytest.fixture(scope="module", params=RUNS, ids=[m for m, _ in RUNS])
def runs(request, tmp_path_factory):
  method, interruption = request.param
  root = tmp_path_factory.mktemp(f"multihost_{method}")
  single = launch(root / "single", method, devices=8)
  # Two processes, interrupted after the first checkpoint...
  port = free_port()
  pair = [launch(root / "multi", method, 4, i, port) for i in range(2)]
  deadline = time.time() + 300
  while not (root / "multi" / "checkpoints" / str(CHECKPOINT_EVERY)).exists():
    assert all(p.poll() is None for p in pair), pair[0].stderr.read()[-3000:]
    assert time.time() < deadline
    time.sleep(0.05)
  if interruption == "SIGKILL both":
    for process in pair:
      process.send_signal(signal.SIGKILL)
      process.communicate()  # reaps it and closes its pipes
    stopped_out = None
  else:
    pair[1].send_signal(signal.SIGTERM)
    (stopped_out, _), _ = finish(pair)  # both exit 0
  checkpoints = root / "multi" / "checkpoints"
  interrupted_at = {
      step: sorted(os.listdir(checkpoints / step / "data"))
      for step in os.listdir(checkpoints)
  }
  # ... then restarted with the same command: they resume and finish.
  port = free_port()
  pair = [launch(root / "multi", method, 4, i, port) for i in range(2)]
  (multi_out, _), (other_out, _) = finish(pair)
  finish([single])
  return dict(
      root=root,
      method=method,
      interruption=interruption,
      interrupted_at=interrupted_at,
      stopped_out=stopped_out,
      multi_out=multi_out,
      other_out=other_out,
  )


def test_the_run_was_interrupted_before_it_finished(runs):
  assert str(STEPS) not in runs["interrupted_at"]


def test_sigterm_to_one_process_stops_both_at_one_step_with_a_checkpoint(runs):
  if runs["interruption"] != "SIGTERM to process 1":
    pytest.skip("this run was SIGKILLed")
  # Process 0 was not signalled: it learnt of the SIGTERM from the service.
  stopped = int(runs["stopped_out"].split("stopped after step ")[1].split()[0])
  assert CHECKPOINT_EVERY < stopped < STEPS
  # Both processes were still there to save their iterator positions.
  assert {"process_0-of-2.json", "process_1-of-2.json"} <= set(
      runs["interrupted_at"][str(stopped)]
  )


def test_losses_equal_the_single_process_run(runs):
  single = outputs.read_jsonl(str(runs["root"] / "single" / "metrics.jsonl"))
  multi = outputs.read_jsonl(str(runs["root"] / "multi" / "metrics.jsonl"))
  assert (
      [m["step"] for m in multi]
      == [m["step"] for m in single]
      == list(range(2, STEPS + 1, 2))
  )
  for one, two in zip(single, multi):
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)


def test_final_parameters_equal_the_single_process_run(runs):
  single = final_params(runs["root"] / "single", runs["method"])
  multi = final_params(runs["root"] / "multi", runs["method"])
  for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(multi)):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_the_restarted_job_took_over_the_killed_jobs_lock(runs):
  # Process 0 of a killed job leaves lock.json behind (a SIGTERMed one
  # releases it); the new job's process 0 found its process gone, took the
  # lock over for both, and released it at the end.
  killed = runs["interruption"] == "SIGKILL both"
  assert ("Took over the lock of" in runs["multi_out"]) == killed
  assert "Took over the lock of" not in runs["other_out"]
  assert not (runs["root"] / "multi" / "lock.json").exists()


def test_a_second_job_is_refused_on_every_process(tmp_path):
  owner = subprocess.Popen(
      [sys.executable, "-c", "import time; time.sleep(600)"]
  )
  try:
    workdir = tmp_path / "held"
    workdir.mkdir()
    lock = {
        "host": socket.gethostname(),
        "pid": owner.pid,
        "started": "now",
        "heartbeat": time.time(),
        "token": "first job",
    }
    (workdir / "lock.json").write_text(json.dumps(lock))
    port = free_port()
    pair = [launch(workdir, "simvae", 4, i, port) for i in range(2)]
    results = [p.communicate(timeout=300) for p in pair]
  finally:
    owner.kill()
    owner.wait()
  assert [p.returncode for p in pair] == [1, 1]
  (_, first_err), (_, second_err) = results
  assert (
      f"is in use by another run (host {socket.gethostname()}, pid {owner.pid},"
      in first_err
  )
  assert "is in use by another run (process 0 names it)" in second_err
  assert os.listdir(workdir) == ["lock.json"]
  assert json.loads((workdir / "lock.json").read_text()) == lock


def test_only_process_0_writes_and_prints(runs):
  assert "Evaluation on the" in runs["multi_out"]
  assert "Evaluation on the" not in runs["other_out"]
  assert "parameters" not in runs["other_out"]
  with open(runs["root"] / "multi" / "eval.json") as file:
    assert 0.0 <= json.load(file)["label"]["knn_acc"] <= 1.0
  # Each process saved its own data-iterator position.
  step_dir = runs["root"] / "multi" / "checkpoints" / str(STEPS) / "data"
  assert {"process_0-of-2.json", "process_1-of-2.json"} <= set(
      os.listdir(step_dir)
  )
