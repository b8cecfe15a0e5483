"""One owner per workdir: ``lock.json`` names the run that trains in it.

A training run takes ownership of its workdir before it writes anything and
gives it back when it ends (normally, on an error or on SIGTERM). The lock
records the owner's host, process id, start time and a heartbeat that a
background thread refreshes. A second run on the same workdir is refused with
one line naming the owner, unless the owner is gone:

* same host: its process no longer exists (or is a zombie, or its pid now
  belongs to a newer process);
* another host: its heartbeat is older than ``stale_after_s``.

Such a lock is taken over, with one line saying so. In a multi-process job
process 0 holds the lock for the whole job and tells the other processes
whether they may proceed (one broadcast at start-up), so a second job is
refused on every process.

Guarantees: on a local or NFS filesystem, reading and replacing the lock
happens under ``flock`` on the workdir and every write is an atomic rename, so
two runs cannot both take it. An object store (``gs://``) has neither: the
lock there detects a second run that starts while the first holds it, but two
runs started within the same second can both take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid

import jax
import numpy as np
from etils import epath
from jax.experimental import multihost_utils

LOCK_FILE = "lock.json"


class WorkdirInUse(RuntimeError):
  """Another live run owns the workdir (or took it over from this one)."""


def _process_fingerprint(pid: int) -> tuple[str, str] | None:
  """(state, start time) of a process from /proc, or None where /proc does
  not have it (gone, or not Linux)."""
  try:
    with open(f"/proc/{pid}/stat") as file:
      fields = file.read().rsplit(")", 1)[1].split()
  except OSError:
    return None
  return fields[0], fields[19]


def process_running(pid: int, start: str | None) -> bool:
  """Whether process ``pid`` of this host still runs, and is the one that
  started at ``start`` (a pid can be reused)."""
  if pid <= 0:  # not a process: 0 and -1 would address groups of them
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # it exists, under another user
  fingerprint = _process_fingerprint(pid)
  if fingerprint is None:
    return True
  state, started = fingerprint
  return state != "Z" and (start is None or started == start)


def describe(record: dict, now: float) -> str:
  """'host H, pid P, started T, last heartbeat S s ago'."""
  return (
      f"host {record['host']}, pid {record['pid']}, started "
      f"{record['started']}, last heartbeat {now - record['heartbeat']:.0f}s ago"
  )


class WorkdirLock:
  """The lock file of one workdir, held by this process once ``acquire``d."""

  def __init__(self, workdir: str, stale_after_s: float):
    if stale_after_s <= 0:
      raise ValueError(f"lock_stale_minutes must be > 0, got {stale_after_s}")
    self.workdir = epath.Path(workdir)
    self.path = self.workdir / LOCK_FILE
    self.local = "://" not in str(workdir)
    self.stale_after_s = stale_after_s
    self.heartbeat_s = min(60.0, stale_after_s / 4)
    self.record = None  # what this process wrote, while it holds the lock
    self.lost_to = None  # the record of a run that took the lock from us
    self._stop = threading.Event()
    self._thread = None

  @contextlib.contextmanager
  def _exclusive(self):
    """Mutual exclusion of lock updates on this workdir (flock; nothing on
    object stores or filesystems without it)."""
    if not self.local:
      yield
      return
    descriptor = os.open(self.workdir, os.O_RDONLY)
    try:
      try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
      except OSError:
        pass  # e.g. NFS without flock on directories: the rename still holds
      yield
    finally:
      os.close(descriptor)  # releases the flock

  def _read(self) -> dict | None:
    try:
      return json.loads(self.path.read_text())
    except FileNotFoundError:
      return None
    except ValueError:  # unreadable: not written by this package
      return {"host": "?", "pid": -1, "started": "?", "heartbeat": 0.0}

  def _write(self, record: dict) -> None:
    text = json.dumps(record, indent=1)
    if not self.local:
      self.path.write_text(text)
      return
    temporary = self.workdir / f".{LOCK_FILE}.{record['token']}"
    temporary.write_text(text)
    os.replace(temporary, self.path)

  def _alive(self, record: dict, now: float) -> bool:
    if record.get("host") == socket.gethostname():
      return process_running(record["pid"], record.get("process_start"))
    return now - record.get("heartbeat", 0.0) < self.stale_after_s

  def live_owner(self) -> dict | None:
    """The record of the live run that holds the lock, if any."""
    owner = self._read()
    return (
        owner if owner is not None and self._alive(owner, time.time()) else None
    )

  def acquire(self) -> str | None:
    """Takes the lock; returns a line to print when it took over a stale
    one. Raises ``WorkdirInUse`` (nothing written) when a live run owns it."""
    fingerprint = _process_fingerprint(os.getpid())
    now = time.time()
    record = dict(
        host=socket.gethostname(),
        pid=os.getpid(),
        process_start=fingerprint[1] if fingerprint else None,
        processes=jax.process_count(),
        started=time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(now)),
        heartbeat=now,
        token=uuid.uuid4().hex,
    )
    with self._exclusive():
      owner = self._read()
      if owner is not None and self._alive(owner, now):
        raise WorkdirInUse(
            f"{self.workdir} is in use by another run ({describe(owner, now)}). "
            f"Wait for it to finish, stop it, or use another --workdir; a lock "
            f"whose owner is gone is taken over by itself ({self.path})."
        )
      self._write(record)
    self.record = record
    self._thread = threading.Thread(
        target=self._beat, name="workdir-heartbeat", daemon=True
    )
    self._thread.start()
    if owner is None:
      return None
    return (
        f"Took over the lock of {self.workdir}: its owner is gone "
        f"({describe(owner, now)})."
    )

  def _beat(self) -> None:
    while not self._stop.wait(self.heartbeat_s):
      try:
        with self._exclusive():
          current = self._read()
          if current is None or current.get("token") != self.record["token"]:
            self.lost_to = current or {}
            return
          self.record = {**self.record, "heartbeat": time.time()}
          self._write(self.record)
      except OSError:
        continue  # e.g. a full disk: try again at the next beat

  def check(self) -> None:
    """Raises ``WorkdirInUse`` if another run took the lock from this one
    (its heartbeat went missing for longer than the stale time)."""
    if self.lost_to is not None:
      who = describe(self.lost_to, time.time()) if self.lost_to else "?"
      raise WorkdirInUse(
          f"Another run took over {self.workdir} ({who}) while this one was "
          f"training; stopped before writing more."
      )

  def release(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    with self._exclusive():
      current = self._read()
      if current is not None and current.get("token") == self.record["token"]:
        self.path.unlink()
    self.record = None


# The workdirs this process holds (their locks; None on processes but 0).
_HELD: dict[str, WorkdirLock | None] = {}


def _key(workdir: str) -> str:
  return str(workdir) if "://" in str(workdir) else os.path.abspath(workdir)


@contextlib.contextmanager
def owned(workdir: str, stale_after_minutes: float):
  """Holds ``workdir`` for this job inside the ``with`` block (re-entrant:
  an inner ``owned`` of the same workdir shares the outer one's lock).

  Process 0 takes the lock; in a multi-process job the others learn from it
  whether to proceed. Raises ``WorkdirInUse`` on every process when another
  live run owns the workdir. Yields the lock (None on processes other than 0).
  """
  key = _key(workdir)
  if key in _HELD:  # the outer ``owned`` releases it
    yield _HELD[key]
    return
  lock, refusal = None, None
  if jax.process_index() == 0:
    lock = WorkdirLock(workdir, stale_after_minutes * 60)
    try:
      takeover = lock.acquire()
      if takeover:
        print(takeover, flush=True)
    except WorkdirInUse as error:
      refusal = error
  if jax.process_count() > 1:
    refused = multihost_utils.broadcast_one_to_all(
        np.int32(refusal is not None)
    )
    if refused and refusal is None:
      refusal = WorkdirInUse(
          f"{workdir} is in use by another run (process 0 names it)."
      )
  if refusal is not None:
    raise refusal
  _HELD[key] = lock
  try:
    yield lock
  finally:
    del _HELD[key]
    if lock is not None:
      lock.release()


def live_owner(workdir: str, stale_after_minutes: float) -> str | None:
  """A description of the live run that owns ``workdir``, or None."""
  owner = WorkdirLock(workdir, stale_after_minutes * 60).live_owner()
  return describe(owner, time.time()) if owner else None
