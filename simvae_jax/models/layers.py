"""Layers with PyTorch semantics that the convolutional networks share:
BatchNorm with PyTorch's defaults and PyTorch's 3x3 stride-2 max-pool, and the
platform whose kernels the networks use (``transposed_conv.py`` has the
transposed convolution).

The max-pool is rewritten with reshapes on CPU only. The platform is
``jax.default_backend()`` unless ``compiling_for(platform)`` names the one a
program is being compiled for (ahead of time, e.g. for TPU on a CPU host).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

_PLATFORM = contextvars.ContextVar("kernel_platform", default=None)


@contextlib.contextmanager
def compiling_for(platform: str):
  """Networks traced inside pick their kernels for ``platform`` ('cpu',
  'gpu', 'tpu') instead of the default backend's."""
  token = _PLATFORM.set(platform)
  try:
    yield
  finally:
    _PLATFORM.reset(token)


def kernel_platform() -> str:
  """The platform whose kernels the networks use (see the module doc)."""
  platform = _PLATFORM.get() or jax.default_backend()
  return "gpu" if platform in ("cuda", "rocm") else platform


# PyTorch's BatchNorm2d defaults: eps 1e-5, running-average momentum 0.1 (Flax's
# momentum is the weight of the old average: 0.9).
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


def batch_norm(
    train: bool, dtype: Any, name: str | None = None
) -> nn.BatchNorm:
  """BatchNorm over the global batch (no ``axis_name``: under ``jax.jit`` the
  statistics of a sharded batch are already global)."""
  return nn.BatchNorm(
      use_running_average=not train,
      momentum=BATCH_NORM_MOMENTUM,
      epsilon=BATCH_NORM_EPSILON,
      dtype=dtype,
      name=name,
  )


def _max_pool_axis(x: jax.Array, axis: int) -> jax.Array:
  """Max over windows of 3 with stride 2 and padding 1 along ``axis``.

  Output ``o`` covers inputs 2o - 1, 2o, 2o + 1: with the axis reshaped to
  pairs (even, odd), that is max(even[o], odd[o], odd[o - 1]).
  """
  size = x.shape[axis]
  out = (size - 1) // 2 + 1
  pad = [(0, 0)] * x.ndim
  pad[axis] = (0, 2 * out - size)
  x = jnp.pad(x, pad, constant_values=-jnp.inf)
  pairs = x.reshape(*x.shape[:axis], out, 2, *x.shape[axis + 1 :])
  even = jax.lax.index_in_dim(pairs, 0, axis + 1, keepdims=False)
  odd = jax.lax.index_in_dim(pairs, 1, axis + 1, keepdims=False)
  shift = [(0, 0)] * x.ndim
  shift[axis] = (1, 0)
  previous_odd = jax.lax.slice_in_dim(
      jnp.pad(odd, shift, constant_values=-jnp.inf), 0, out, axis=axis
  )
  return jnp.maximum(jnp.maximum(even, odd), previous_odd)


def max_pool_3x3_stride_2(x: jax.Array) -> jax.Array:
  """PyTorch ``MaxPool2d(3, stride=2, padding=1)`` on [N, H, W, C].

  On CPU separable (rows, then columns) and written with reshapes: the same
  values as ``nn.max_pool``, but its gradient is a few selects instead of
  XLA's select-and-scatter, which is slow on CPU. Elsewhere ``nn.max_pool``
  (``reduce_window``).
  """
  if kernel_platform() != "cpu":
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
  return _max_pool_axis(_max_pool_axis(x, 1), 2)
