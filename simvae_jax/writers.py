"""Metric writers: one interface, JSON lines and TensorBoard backends.

``make_writers(workdir, tensorboard)`` returns what a run logs through:
``metrics`` (training scalars: ``metrics.jsonl``, the stable contract, and
TensorBoard) and ``summaries`` (evaluation scalars and images: TensorBoard
only; they also go to eval_history.jsonl and the PNG files). TensorBoard event
files (``workdir/tensorboard``) are written by tensorboardX, no TensorFlow
needed. On every process but 0 both are ``NullWriter``, so multi-host runs
write each file once.
"""

from __future__ import annotations

from typing import Mapping, Protocol

import jax
import numpy as np
from etils import epath

from simvae_jax import outputs


class MetricWriter(Protocol):

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    ...

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """images: name -> float [H, W, C] in [0, 1]."""
    ...

  def drop_after(self, step: int) -> None:
    """Forgets what an interrupted run logged after ``step`` (if it can)."""
    ...

  def close(self) -> None:
    ...


class NullWriter:
  """Writes nothing (processes other than 0)."""

  def write_scalars(self, step, scalars):
    del step, scalars

  def write_images(self, step, images):
    del step, images

  def drop_after(self, step):
    del step

  def close(self):
    pass


class JsonlWriter:
  """Scalars as one JSON object per step in a ``.jsonl`` file (append-only;
  on an object store written whole at most once a minute and at close)."""

  def __init__(self, path: str):
    self.log = outputs.JsonLinesLog(path, flush_every_s=60.0)

  def write_scalars(self, step, scalars):
    self.log.write(step, {k: float(v) for k, v in scalars.items()})

  def write_images(self, step, images):
    del step, images  # images go to the PNG files and TensorBoard

  def drop_after(self, step):
    self.log.drop_after(step)

  def close(self):
    self.log.close()


class TensorBoardWriter:
  """TensorBoard event files (tensorboardX)."""

  def __init__(self, logdir: str):
    import tensorboardX  # Imported lazily: only runs that ask for it need it.

    self._writer = tensorboardX.SummaryWriter(logdir)

  def write_scalars(self, step, scalars):
    for name, value in scalars.items():
      self._writer.add_scalar(name, float(value), step)
    self._writer.flush()

  def write_images(self, step, images):
    for name, image in images.items():
      self._writer.add_image(
          name, np.clip(image, 0, 1), step, dataformats="HWC"
      )
    self._writer.flush()

  def drop_after(self, step):
    del step  # TensorBoard shows the newest value of a repeated step

  def close(self):
    self._writer.close()


class MultiWriter:
  """Writes to several writers."""

  def __init__(self, writers):
    self.writers = list(writers)

  def write_scalars(self, step, scalars):
    for writer in self.writers:
      writer.write_scalars(step, scalars)

  def write_images(self, step, images):
    for writer in self.writers:
      writer.write_images(step, images)

  def drop_after(self, step):
    for writer in self.writers:
      writer.drop_after(step)

  def close(self):
    for writer in self.writers:
      writer.close()


def make_writers(workdir: str, tensorboard: bool):
  """(metrics, summaries) writers of a run; closing ``metrics`` closes both."""
  if jax.process_index() != 0:
    return NullWriter(), NullWriter()
  board = (
      TensorBoardWriter(str(epath.Path(workdir) / "tensorboard"))
      if tensorboard
      else NullWriter()
  )
  jsonl = JsonlWriter(str(epath.Path(workdir) / "metrics.jsonl"))
  return MultiWriter([jsonl, board]), board
