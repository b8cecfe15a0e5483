"""Layers with PyTorch semantics that the convolutional networks share.

``TransposedConv`` is PyTorch's ``ConvTranspose2d`` (kernel ``[kh, kw, in, out]``,
``padding``, ``output_padding``): input pixel ``i`` adds ``x[i] * W[a]`` to output
pixel ``i * stride - padding + a``. XLA's CPU backend runs the textbook form
(a convolution over the zero-dilated input) slowly, so the layer computes the
same function in one of three exact ways:

* ``phases``: output pixels ``y = m * stride + r`` of one phase ``r`` read a fixed
  subset of kernel taps, so each of the ``stride**2`` phases is a small stride-1
  convolution of the undilated input; the phases are interleaved afterwards
  (sub-pixel convolution). No multiply touches an inserted zero.
* ``matmul``: for inputs no larger than the kernel (the decoder's 2x2 stage)
  the layer is a dense ``[H*W*in, H'*W'*out]`` matrix built from the kernel, and
  the whole layer is one matrix product.
* ``lax``: ``jax.lax.conv_transpose``, the reference.

``auto`` picks ``matmul`` for inputs no larger than the kernel and ``phases``
otherwise. All are tested equal to a NumPy scatter reference and to
``flax.linen.ConvTranspose``.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

TRANSPOSED_CONV_METHODS = ("auto", "phases", "matmul", "lax")

# PyTorch's BatchNorm2d defaults: eps 1e-5, running-average momentum 0.1 (Flax's
# momentum is the weight of the old average: 0.9).
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


def batch_norm(train: bool, dtype: Any, name: str | None = None) -> nn.BatchNorm:
  """BatchNorm over the global batch (no ``axis_name``: under ``jax.jit`` the
  statistics of a sharded batch are already global)."""
  return nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM,
                      epsilon=BATCH_NORM_EPSILON, dtype=dtype, name=name)


def max_pool_3x3_stride_2(x: jax.Array) -> jax.Array:
  """PyTorch ``MaxPool2d(3, stride=2, padding=1)`` on [N, H, W, C].

  Written as the maximum of nine strided slices of the (-inf)-padded input:
  the same values as ``nn.max_pool``, but its gradient is a few selects
  instead of XLA's select-and-scatter, which is slow on CPU.
  """
  _, height, width, _ = x.shape
  out_h, out_w = (height - 1) // 2 + 1, (width - 1) // 2 + 1
  padded = jnp.pad(x, ((0, 0), (1, 2), (1, 2), (0, 0)), constant_values=-jnp.inf)
  result = None
  for dy in range(3):
    for dx in range(3):
      window = padded[:, dy:dy + 2 * out_h:2, dx:dx + 2 * out_w:2]
      result = window if result is None else jnp.maximum(result, window)
  return result


def _output_size(size: int, kernel: int, stride: int, padding: int,
                 output_padding: int) -> int:
  return (size - 1) * stride - 2 * padding + kernel + output_padding


def _phase_taps(kernel: int, stride: int, padding: int, phase: int):
  """Kernel taps of output phase ``phase`` sorted by input offset.

  Output ``m * stride + phase`` reads input ``m + offset`` through tap
  ``a = phase + padding - offset * stride``. Returns (taps, lowest offset);
  offsets are consecutive. A phase without taps (e.g. the odd outputs of a
  1x1 stride-2 kernel) returns ([], 0).
  """
  taps = [a for a in range(kernel) if (phase + padding - a) % stride == 0]
  taps.sort(key=lambda a: (phase + padding - a) // stride)
  return taps, (phase + padding - taps[0]) // stride if taps else 0


def _transposed_conv_phases(x, kernel, stride: int, padding: int):
  """Phase (sub-pixel) form; requires output size == stride * input size."""
  batch, height, width, _ = x.shape
  kernel_size = kernel.shape[0]
  phases = []
  for phase_y in range(stride):
    taps_y, low_y = _phase_taps(kernel_size, stride, padding, phase_y)
    row = []
    for phase_x in range(stride):
      taps_x, low_x = _phase_taps(kernel_size, stride, padding, phase_x)
      if not (taps_y and taps_x):
        row.append(jnp.zeros((batch, height, width, kernel.shape[-1]), x.dtype))
        continue
      sub_kernel = kernel[np.asarray(taps_y)][:, np.asarray(taps_x)]
      pad_y = (-low_y, low_y + len(taps_y) - 1)
      pad_x = (-low_x, low_x + len(taps_x) - 1)
      row.append(jax.lax.conv_general_dilated(
          x, sub_kernel, window_strides=(1, 1), padding=(pad_y, pad_x),
          dimension_numbers=("NHWC", "HWIO", "NHWC")))
    phases.append(jnp.stack(row, axis=3))                   # [N, H, W, s, C]
  out = jnp.stack(phases, axis=2)                           # [N, H, s, W, s, C]
  return out.reshape(batch, height * stride, width * stride, -1)


def _selection(size: int, out_size: int, kernel: int, stride: int, padding: int):
  """0/1 array [size, out_size, kernel]: input i reaches output o through tap a."""
  selection = np.zeros((size, out_size, kernel), np.float32)
  for i in range(size):
    for a in range(kernel):
      o = i * stride - padding + a
      if 0 <= o < out_size:
        selection[i, o, a] = 1.0
  return selection


def _transposed_conv_matmul(x, kernel, stride: int, padding: int,
                            output_padding: int):
  """Dense-matrix form: the layer as one [N, H*W*in] x [H*W*in, H'*W'*out] product."""
  batch, height, width, in_features = x.shape
  kernel_size, _, _, out_features = kernel.shape
  out_h = _output_size(height, kernel_size, stride, padding, output_padding)
  out_w = _output_size(width, kernel_size, stride, padding, output_padding)
  select_y = _selection(height, out_h, kernel_size, stride, padding)
  select_x = _selection(width, out_w, kernel_size, stride, padding)
  matrix = jnp.einsum("iya,jxb,abco->ijcyxo", select_y.astype(kernel.dtype),
                      select_x.astype(kernel.dtype), kernel)
  matrix = matrix.reshape(height * width * in_features, out_h * out_w * out_features)
  out = x.reshape(batch, -1) @ matrix
  return out.reshape(batch, out_h, out_w, out_features)


def transposed_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: int,
                    output_padding: int, method: str = "auto") -> jax.Array:
  """PyTorch ``conv_transpose2d`` of x [N, H, W, in] with kernel [k, k, in, out].

  Returns [N, H', W', out], H' = (H - 1) * stride - 2 * padding + k + output_padding.
  """
  if method not in TRANSPOSED_CONV_METHODS:
    raise ValueError(f"Unknown transposed-convolution method {method!r}; choose "
                     f"one of {TRANSPOSED_CONV_METHODS}")
  _, height, width, _ = x.shape
  kernel_size = kernel.shape[0]
  out_h = _output_size(height, kernel_size, stride, padding, output_padding)
  out_w = _output_size(width, kernel_size, stride, padding, output_padding)
  if method == "auto":
    small = height * width <= kernel_size * kernel_size
    method = "matmul" if small else "phases"
  if method == "phases" and (out_h, out_w) != (stride * height, stride * width):
    method = "lax"   # the phase form interleaves equal-sized phases only
  if method == "phases":
    return _transposed_conv_phases(x, kernel, stride, padding)
  if method == "matmul":
    return _transposed_conv_matmul(x, kernel, stride, padding, output_padding)
  low = kernel_size - 1 - padding
  # transpose_kernel reads the kernel as the forward convolution's (in <-> out).
  return jax.lax.conv_transpose(
      x, jnp.swapaxes(kernel, 2, 3), (stride, stride), ((low, low + output_padding),) * 2,
      dimension_numbers=("NHWC", "HWIO", "NHWC"), transpose_kernel=True)


class TransposedConv(nn.Module):
  """PyTorch ``ConvTranspose2d`` with square kernels: [N, H, W, in] -> [N, H', W', out].

  The kernel parameter is ``[k, k, in, out]`` (PyTorch's weight ``[in, out, k, k]``
  moved to channels-last), initialised as PyTorch does (uniform with bound
  ``1 / sqrt(out * k * k)``).
  """

  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  output_padding: int = 0
  use_bias: bool = False
  method: str = "auto"
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    in_features = x.shape[-1]
    bound = 1.0 / math.sqrt(self.features * self.kernel_size ** 2)
    uniform = lambda rng, shape: jax.random.uniform(rng, shape, jnp.float32,
                                                    -bound, bound)
    kernel = self.param("kernel", uniform, (self.kernel_size, self.kernel_size,
                                            in_features, self.features))
    dtype = self.dtype or x.dtype
    y = transposed_conv(x.astype(dtype), kernel.astype(dtype), self.stride,
                        self.padding, self.output_padding, self.method)
    if self.use_bias:
      y = y + self.param("bias", uniform, (self.features,)).astype(dtype)
    return y
