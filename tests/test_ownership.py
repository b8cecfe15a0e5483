"""One owner per workdir, and failed saves that lose nothing: the lock's rules
in-process, then real runs that collide, are SIGKILLed or run out of space."""

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest

from simvae_jax import outputs, ownership, train
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

STEPS = 300  # digits_command checkpoints every 100 steps


@pytest.fixture
def live_pid():
  """The pid of a process of this host that runs during the test."""
  process = subprocess.Popen(
      [sys.executable, "-c", "import time; time.sleep(600)"]
  )
  yield process.pid
  process.kill()
  process.wait()


def gone_pid() -> int:
  """The pid of a process of this host that has ended (and was reaped)."""
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait()
  return process.pid


def write_lock(workdir, **fields):
  record = {
      "host": socket.gethostname(),
      "pid": -1,
      "started": "2026-01-01 00:00:00 UTC",
      "heartbeat": time.time(),
      "token": "other",
      **fields,
  }
  # Atomically, as the package does: a running owner reads it meanwhile.
  temporary = workdir / "lock.tmp"
  temporary.write_text(json.dumps(record))
  os.replace(temporary, workdir / ownership.LOCK_FILE)
  return record


def wait_until(condition, timeout=30.0):
  """Polls ``condition`` until it holds (a loaded machine runs threads late)."""
  deadline = time.time() + timeout
  while not condition():
    assert time.time() < deadline, "condition never held"
    time.sleep(0.02)


def read_lock(workdir) -> dict:
  return json.loads((workdir / ownership.LOCK_FILE).read_text())


def test_a_live_owner_refuses_a_training_run_that_writes_nothing(
    tmp_path, live_pid
):
  workdir = tmp_path / "run"
  workdir.mkdir()
  lock = write_lock(workdir, pid=live_pid)
  with pytest.raises(ownership.WorkdirInUse) as error:
    train.train_and_evaluate(tiny_digits_config(), str(workdir))
  assert f"pid {live_pid}" in str(error.value)
  assert f"host {socket.gethostname()}" in str(error.value)
  assert "another --workdir" in str(error.value)
  assert os.listdir(workdir) == [ownership.LOCK_FILE]
  assert read_lock(workdir) == lock
  # train() itself (the Python entry point) is refused the same way.
  with pytest.raises(ownership.WorkdirInUse):
    train.train(Experiment.from_config(tiny_digits_config()), str(workdir))
  assert os.listdir(workdir) == [ownership.LOCK_FILE]


@pytest.mark.parametrize(
    "owner",
    [
        "ended process",  # same host, the pid no longer exists
        "reused pid",  # same host, the pid now belongs to another process
        "silent host",  # another host, no heartbeat for 2 minutes
    ],
)
def test_a_lock_whose_owner_is_gone_is_taken_over(tmp_path, owner):
  fields = {
      "ended process": dict(pid=gone_pid()),
      "reused pid": dict(pid=os.getpid(), process_start="1"),
      "silent host": dict(host="elsewhere", heartbeat=time.time() - 120),
  }[owner]
  old = write_lock(tmp_path, **fields)
  lock = ownership.WorkdirLock(str(tmp_path), stale_after_s=60)
  message = lock.acquire()
  assert message.startswith(f"Took over the lock of {tmp_path}")
  assert f"pid {old['pid']}" in message
  held = read_lock(tmp_path)
  assert held["pid"] == os.getpid() and held["token"] != old["token"]
  lock.release()
  assert not (tmp_path / ownership.LOCK_FILE).exists()


def test_another_hosts_lock_with_a_recent_heartbeat_is_respected(tmp_path):
  write_lock(tmp_path, host="elsewhere", heartbeat=time.time() - 30)
  with pytest.raises(ownership.WorkdirInUse, match="host elsewhere"):
    ownership.WorkdirLock(str(tmp_path), stale_after_s=60).acquire()


def test_the_owner_refreshes_its_heartbeat_and_notices_a_takeover(tmp_path):
  lock = ownership.WorkdirLock(str(tmp_path), stale_after_s=0.2)  # beat 0.05 s
  assert lock.acquire() is None
  first = read_lock(tmp_path)["heartbeat"]
  wait_until(lambda: read_lock(tmp_path)["heartbeat"] > first)
  lock.check()  # still ours
  write_lock(tmp_path, host="elsewhere", pid=4321)  # another run took it
  wait_until(lambda: lock.lost_to is not None)
  with pytest.raises(ownership.WorkdirInUse, match="pid 4321"):
    lock.check()
  lock.release()  # leaves the new owner's lock alone
  assert read_lock(tmp_path)["pid"] == 4321


def test_ownership_is_reentrant_and_released_on_errors(tmp_path):
  with pytest.raises(RuntimeError, match="boom"):
    with ownership.owned(str(tmp_path), stale_after_minutes=1):
      token = read_lock(tmp_path)["token"]
      with ownership.owned(str(tmp_path), stale_after_minutes=1):
        assert read_lock(tmp_path)["token"] == token  # the same lock
      assert read_lock(tmp_path)["token"] == token  # still held
      raise RuntimeError("boom")
  assert not (tmp_path / ownership.LOCK_FILE).exists()


@pytest.mark.slow
def test_eval_mode_reads_a_workdir_being_trained_without_writing_training_state(
    tmp_path, live_pid, capsys
):
  workdir = tmp_path / "run"
  config = tiny_digits_config(num_steps=8, checkpoint_every=4)
  train.train(Experiment.from_config(config), str(workdir))
  checkpoints = workdir / "checkpoints"
  before = sorted(
      (str(p.relative_to(checkpoints)), p.stat().st_mtime_ns)
      for p in checkpoints.rglob("*")
  )
  lock = write_lock(workdir, pid=live_pid)
  capsys.readouterr()
  results = train.train_and_evaluate(config, str(workdir), mode="eval")
  assert results["step"] == 8
  printed = capsys.readouterr().out
  assert (
      f"is being trained (host {socket.gethostname()}, pid {live_pid}"
      in printed
  )
  after = sorted(
      (str(p.relative_to(checkpoints)), p.stat().st_mtime_ns)
      for p in checkpoints.rglob("*")
  )
  assert after == before
  assert read_lock(workdir) == lock


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  """The uninterrupted run every disturbed run must end equal to."""
  workdir = tmp_path_factory.mktemp("straight")
  state = train_digits(workdir, STEPS)
  return state.params, outputs.read_jsonl(str(workdir / "metrics.jsonl"))


def assert_ends_like(straight, workdir):
  params, metrics = straight
  assert params_equal(params, final_digits_state(workdir, STEPS).params)
  assert outputs.read_jsonl(str(workdir / "metrics.jsonl")) == metrics
  assert not (workdir / ownership.LOCK_FILE).exists()  # released at the end


@pytest.mark.slow
def test_a_second_run_is_refused_while_the_first_trains(tmp_path, straight):
  workdir = tmp_path / "run"
  first = start(digits_command(workdir, STEPS))
  wait_for(workdir / "checkpoints" / "100", first)
  first.send_signal(signal.SIGSTOP)  # keep it mid-run while the second starts
  try:
    second = run(digits_command(workdir, STEPS), timeout=300)
  finally:
    first.send_signal(signal.SIGCONT)
  assert second.returncode == 1
  assert second.stderr.strip().splitlines() == [
      second.stderr.strip().splitlines()[0]
  ]  # one line
  assert f"is in use by another run (host {socket.gethostname()}, pid " in (
      second.stderr
  )
  assert f"pid {first.pid}," in second.stderr
  assert "parameters" not in second.stdout  # it built nothing
  _, stderr = first.communicate(timeout=600)
  assert first.returncode == 0, stderr[-3000:]
  assert_ends_like(straight, workdir)  # no duplicated steps, same parameters


@pytest.mark.slow
def test_a_sigkilled_owners_lock_is_taken_over_and_the_run_resumes_bitwise(
    tmp_path, straight
):
  workdir = tmp_path / "run"
  killed = start(digits_command(workdir, STEPS))
  wait_for(workdir / "checkpoints" / "100", killed)
  killed.send_signal(signal.SIGKILL)
  killed.communicate()
  assert read_lock(workdir)["pid"] == killed.pid  # left behind
  resumed = run(digits_command(workdir, STEPS), timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"Took over the lock of {workdir}: its owner is gone (host " in (
      resumed.stdout
  )
  assert f"pid {killed.pid}," in resumed.stdout
  assert_ends_like(straight, workdir)


@pytest.mark.slow
@pytest.mark.skipif(
    not hasattr(resource, "prlimit"), reason="needs Linux's prlimit"
)
def test_a_failed_save_stops_the_run_keeps_older_checkpoints_and_resumes(
    tmp_path, straight
):
  workdir = tmp_path / "run"
  command = digits_command(workdir, STEPS, "--config.max_checkpoints=1")
  process = start(command)
  wait_for(workdir / "checkpoints" / "100", process)
  # The disk "fills up" mid-run: from now on no file may grow past 64 KiB
  # (the checkpoint's arrays need more; metrics lines and metadata fit).
  process.send_signal(signal.SIGSTOP)
  resource.prlimit(
      process.pid, resource.RLIMIT_FSIZE, (1 << 16, resource.RLIM_INFINITY)
  )
  process.send_signal(signal.SIGCONT)
  _, stderr = process.communicate(timeout=600)
  assert process.returncode == 1
  # Orbax logs its background threads' tracebacks around it; ours is the
  # one line that starts with "error:".
  (line,) = [text for text in stderr.splitlines() if text.startswith("error:")]
  match = re.fullmatch(
      r"error: The checkpoint of step (\d+) could not be written \(File too "
      r"large \(errno 27\)\); the last good checkpoint is step (\d+) in "
      rf"{re.escape(str(workdir / 'checkpoints'))}\. Nothing older was "
      r"deleted: fix the cause \(disk space, permissions\) and re-run the "
      r"same command to resume\.",
      line,
  )
  assert match, line
  failed, good = int(match.group(1)), int(match.group(2))
  assert failed == good + 100
  # Retention (keep 1) deleted nothing for the save that failed.
  complete = [p for p in os.listdir(workdir / "checkpoints") if p.isdigit()]
  assert complete == [str(good)]
  assert not (workdir / ownership.LOCK_FILE).exists()  # released on the error
  # The cause removed, the same command resumes and ends as if undisturbed.
  resumed = run(command)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert_ends_like(straight, workdir)
  assert os.listdir(workdir / "checkpoints") == [str(STEPS)]
