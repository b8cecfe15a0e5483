"""What a run writes into its workdir: metrics.jsonl, image grids, tables."""

from __future__ import annotations

import json
import math
import os

import matplotlib.image
import numpy as np


class JsonLinesLog:
  """An append-only ``.jsonl`` file of one JSON object per logged step.

  Opening it creates the file if it is missing and never truncates it. A run
  resumed from step s calls ``drop_after(s)``: lines that the interrupted run
  logged after its last checkpoint are removed, so the file describes one
  uninterrupted run; everything up to s is kept.
  """

  def __init__(self, path: str):
    self.path = path
    with open(path, "a"):
      pass

  def drop_after(self, step: int) -> None:
    """Removes entries logged after ``step``."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as file:
      kept = [
          line
          for line in file
          if line.strip() and json.loads(line)["step"] <= step
      ]
    with open(self.path, "w") as file:
      file.writelines(kept)

  def write(self, step: int, record: dict) -> None:
    with open(self.path, "a") as file:
      file.write(json.dumps({"step": int(step), **record}) + "\n")


def read_jsonl(path: str) -> list[dict]:
  with open(path) as file:
    return [json.loads(line) for line in file if line.strip()]


def image_grid(rows: list[np.ndarray]) -> np.ndarray:
  """Tiles rows of images, each [N, H, W, C] in [0, 1], into one [R*H, N*W, C]."""
  return np.concatenate(
      [np.concatenate(list(row), axis=1) for row in rows], axis=0
  )


def save_image_grid(
    path: str, rows: list[np.ndarray], min_size: int = 64
) -> None:
  """Saves ``image_grid(rows)`` as a PNG (grayscale if one channel); small
  images are enlarged (nearest neighbour) to at least ``min_size`` pixels."""
  grid = np.clip(image_grid(rows), 0.0, 1.0)
  factor = max(1, min_size // rows[0].shape[1])
  grid = grid.repeat(factor, axis=0).repeat(factor, axis=1)
  if grid.shape[-1] == 1:
    matplotlib.image.imsave(path, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
  else:
    matplotlib.image.imsave(path, grid)


def save_samples(path: str, samples: np.ndarray, per_row: int = 8) -> None:
  """Saves samples [N, H, W, C] as a grid with ``per_row`` images per row."""
  num_rows = math.ceil(len(samples) / per_row)
  padded = np.zeros((num_rows * per_row, *samples.shape[1:]), samples.dtype)
  padded[: len(samples)] = samples
  save_image_grid(
      path, list(padded.reshape(num_rows, per_row, *samples.shape[1:]))
  )


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
