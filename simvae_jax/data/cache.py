"""Decode once: uint8 image caches that record what produced them.

A dataset stored as encoded images (tfds's PNG/JPEG records, CelebA's JPEG
folder) is decoded, cropped and resized once into a uint8 array ``[N, H, W,
C]``: in memory, or in a memory-mapped ``NAME.npy`` that training and
evaluation share across runs. Beside it, ``NAME.json`` records the
provenance (source, split, resolution, crop, cache version, the files it was
read from...). A cache is used only when its provenance equals the one asked
for; otherwise it is rebuilt (saying why), never silently stale.

Builds are safe against interruption: the array is written to
``NAME.npy.tmp-PID`` and renamed into place when complete, and the provenance
is written last, so a build that was killed leaves nothing that is later
trusted (its temporary file is removed by the next build once its process
has ended).
"""

from __future__ import annotations

import glob
import json
import os
from typing import Callable

import numpy as np

VERSION = 1  # bump when decoding changes: every cache is then rebuilt

# fill(path, images): writes every image into images (uint8 [N, H, W, C]);
# path is the memory-mapped file being written (None in memory), for workers
# that open it themselves.
Fill = Callable[[str | None, np.ndarray], None]


def default_dir(beside: str) -> str:
  """Where caches go when ``data.cache_dir`` is empty: ``simvae_cache/``
  beside the data if that is a writable local folder, else
  ``~/.cache/simvae_jax/data``."""
  if beside and "://" not in beside:
    folder = os.path.join(os.path.abspath(beside), "simvae_cache")
    parent = os.path.dirname(folder)
    if os.path.isdir(folder) or os.access(parent, os.W_OK):
      return folder
  return os.path.expanduser("~/.cache/simvae_jax/data")


def _trusted(path: str, provenance: dict) -> tuple[bool, str]:
  """(whether NAME.npy can be used, why not)."""
  record = path + ".json"
  if not os.path.exists(record) or not os.path.exists(path + ".npy"):
    return False, "no complete cache yet"
  with open(record) as file:
    recorded = json.load(file)
  changed = sorted(
      key
      for key in provenance.keys() | recorded.keys()
      if provenance.get(key) != recorded.get(key)
  )
  if changed:
    return False, f"its {', '.join(changed)} changed"
  return True, ""


def _remove_stale_temporaries(path: str) -> None:
  from simvae_jax import ownership  # pylint: disable=import-outside-toplevel

  for temporary in glob.glob(glob.escape(path) + ".*.tmp-*"):
    pid = int(temporary.rsplit("-", 1)[1])
    if not ownership.process_running(pid, None):
      os.remove(temporary)


def _replace_with_text(path: str, text: str) -> None:
  temporary = f"{path}.tmp-{os.getpid()}"
  with open(temporary, "w") as file:
    file.write(text)
  os.replace(temporary, path)


def memory_mapped(
    path: str,
    provenance: dict,
    shape: tuple[int, ...],
    fill: Fill,
    extras: Callable[[], dict[str, np.ndarray]] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """The cache ``path``.npy (read-only memory map, uint8 ``shape``), built
  first if it is missing or was produced differently. ``extras()`` (small
  arrays, e.g. labels) is saved beside it as ``path``.extras.npz when the
  cache is built and read back with it. Returns (images, extras)."""
  provenance = {
      "cache_version": VERSION,
      "shape": list(shape),
      **provenance,
  }
  trusted, why = _trusted(path, provenance)
  if not trusted:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    _remove_stale_temporaries(path)
    log(f"Building the decoded-image cache {path}.npy ({why}).")
    temporary = f"{path}.npy.tmp-{os.getpid()}"
    try:
      images = np.lib.format.open_memmap(
          temporary, mode="w+", dtype=np.uint8, shape=shape
      )
      fill(temporary, images)
      images.flush()
      del images
      if extras is not None:
        extras_temporary = f"{path}.extras.npz.tmp-{os.getpid()}"
        with open(extras_temporary, "wb") as file:
          np.savez(file, **extras())
        os.replace(extras_temporary, path + ".extras.npz")
      os.replace(temporary, path + ".npy")
    finally:
      for leftover in glob.glob(glob.escape(path) + f".*.tmp-{os.getpid()}"):
        os.remove(leftover)
    _replace_with_text(path + ".json", json.dumps(provenance, indent=1))
  images = np.load(path + ".npy", mmap_mode="r")
  saved = {}
  if extras is not None:
    with np.load(path + ".extras.npz") as file:
      saved = {name: file[name] for name in file.files}
  return images, saved


def in_memory(shape: tuple[int, ...], fill: Fill) -> np.ndarray:
  """uint8 ``shape`` decoded into memory by ``fill``."""
  images = np.empty(shape, np.uint8)
  fill(None, images)
  return images
