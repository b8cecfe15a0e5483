"""What a run writes into its workdir: metrics.jsonl, image grids, tables.

Paths are ``etils.epath`` paths, so a workdir may be a ``gs://`` bucket.
"""

from __future__ import annotations

import io
import json
import math
import time

import numpy as np
from etils import epath


class JsonLinesLog:
  """An append-only ``.jsonl`` file of one JSON object per logged step.

  Opening it creates the file if it is missing and never truncates it. A run
  resumed from step s calls ``drop_after(s)``: lines that the interrupted run
  logged after its last checkpoint are removed, so the file describes one
  uninterrupted run; everything up to s is kept.

  On a filesystem each record is appended to the file. An object store
  (``gs://``) cannot append: there the lines are kept in memory and the
  object is written whole when ``flush_every_s`` seconds have passed since the
  last write of it (0: at every record) and at ``close``, so a log every few
  milliseconds does not rewrite a growing object each time.
  """

  def __init__(self, path: str, flush_every_s: float = 0.0):
    self.path = epath.Path(path)
    self.remote = "://" in str(path)
    self.flush_every_s = flush_every_s
    self._lines = None  # an object store's lines, held here
    self._written = time.monotonic()
    if self.remote:
      self._lines = (
          self.path.read_text().splitlines(keepends=True)
          if self.path.exists()
          else []
      )
      self._write_object()
    elif not self.path.exists():
      self.path.write_text("")

  def drop_after(self, step: int) -> None:
    """Removes entries logged after ``step``."""
    lines = (
        self._lines
        if self.remote
        else self.path.read_text().splitlines(keepends=True)
    )
    kept = [
        line
        for line in lines
        if line.strip() and json.loads(line)["step"] <= step
    ]
    if self.remote:
      self._lines = kept
      self._write_object()
    else:
      self.path.write_text("".join(kept))

  def write(self, step: int, record: dict) -> None:
    line = json.dumps({"step": int(step), **record}) + "\n"
    if not self.remote:
      with self.path.open("a") as file:
        file.write(line)
      return
    self._lines.append(line)
    if time.monotonic() - self._written >= self.flush_every_s:
      self._write_object()

  def _write_object(self) -> None:
    self.path.write_text("".join(self._lines))
    self._written = time.monotonic()

  def close(self) -> None:
    """Writes what an object store's copy lacks."""
    if self.remote:
      self._write_object()


def read_jsonl(path: str) -> list[dict]:
  text = epath.Path(path).read_text()
  return [json.loads(line) for line in text.splitlines() if line.strip()]


def image_grid(rows: list[np.ndarray]) -> np.ndarray:
  """Tiles rows of images, each [N, H, W, C] in [0, 1], into one [R*H, N*W, C]."""
  return np.concatenate(
      [np.concatenate(list(row), axis=1) for row in rows], axis=0
  )


def samples_grid(samples: np.ndarray, per_row: int = 8) -> np.ndarray:
  """Samples [N, H, W, C] tiled ``per_row`` to a row: [rows*H, per_row*W, C]."""
  num_rows = math.ceil(len(samples) / per_row)
  padded = np.zeros((num_rows * per_row, *samples.shape[1:]), samples.dtype)
  padded[: len(samples)] = samples
  return image_grid(list(padded.reshape(num_rows, per_row, *samples.shape[1:])))


def save_image(
    path: str, grid: np.ndarray, tile_size: int, min_size: int = 64
) -> None:
  """Saves a grid [H, W, C] in [0, 1] of tiles ``tile_size`` pixels high as
  PNG (grayscale if one channel); small tiles are enlarged (nearest
  neighbour) to at least ``min_size`` pixels."""
  import matplotlib.image  # pylint: disable=import-outside-toplevel

  grid = np.clip(grid, 0.0, 1.0)
  factor = max(1, min_size // tile_size)
  grid = grid.repeat(factor, axis=0).repeat(factor, axis=1)
  buffer = io.BytesIO()
  if grid.shape[-1] == 1:
    matplotlib.image.imsave(
        buffer, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0, format="png"
    )
  else:
    matplotlib.image.imsave(buffer, grid, format="png")
  epath.Path(path).write_bytes(buffer.getvalue())


def format_table(header: list[str], rows: list[list]) -> str:
  """A plain-text table with aligned columns."""
  cells = [header] + [
      [f"{c:.4f}" if isinstance(c, float) else str(c) for c in row]
      for row in rows
  ]
  widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
  lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)


def pca_2d(points: np.ndarray) -> np.ndarray:
  """Projection of points [N, D] on their first two principal axes: [N, 2]."""
  centred = np.asarray(points, np.float64) - np.mean(points, axis=0)
  _, _, axes = np.linalg.svd(centred, full_matrices=False)
  return centred @ axes[:2].T


def save_latents(
    path: str,
    representations: np.ndarray,
    labels: np.ndarray,
    title: str,
    max_points: int = 5000,
) -> None:
  """latents.png: a PCA of representations [N, D] coloured by label."""
  import matplotlib.figure  # pylint: disable=import-outside-toplevel

  projected = pca_2d(representations)[:max_points]
  fig = matplotlib.figure.Figure(figsize=(5.5, 4.5), layout="constrained")
  ax = fig.subplots()
  points = ax.scatter(
      projected[:, 0], projected[:, 1], c=labels[:max_points], cmap="tab10", s=4
  )
  fig.colorbar(points, ax=ax, label="label")
  ax.set_title(title, fontsize=9)
  ax.set_xlabel("principal axis 1")
  ax.set_ylabel("principal axis 2")
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=100)
  epath.Path(path).write_bytes(buffer.getvalue())
