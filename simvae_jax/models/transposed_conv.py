"""PyTorch's ``ConvTranspose2d`` as ``TransposedConv``, in exact forms fast on
each backend.

``TransposedConv`` is PyTorch's ``ConvTranspose2d`` (kernel ``[kh, kw, in, out]``,
``padding``, ``output_padding``): input pixel ``i`` adds ``x[i] * W[a]`` to output
pixel ``i * stride - padding + a``. XLA's CPU backend runs the textbook form
(a convolution over the zero-dilated input) slowly, and its convolution
gradients are slower than matrix products of the same size, so the layer
computes the same function in one of these exact ways:

* ``phases``: output pixels ``y = m * stride + r`` of one phase ``r`` read a fixed
  subset of kernel taps, so each of the ``stride**2`` phases is a small stride-1
  convolution of the undilated input; the phases are interleaved afterwards
  (sub-pixel convolution). No multiply touches an inserted zero.
* ``scatter``: one matrix product gives every input pixel's contribution to
  its k x k output window, and the contributions are added into place phase by
  phase (col2im; how PyTorch computes the layer). Its gradients are matrix
  products too: ``dW = x^T @ patches(g)`` and ``dx = patches(g) @ W^T``.
* ``auto`` (default): on CPU the fastest exact forward (``phases`` for stride-1
  layers whose input is larger than the kernel, ``scatter`` otherwise) with the
  gradients of ``scatter`` (a ``custom_vjp``); on GPU and TPU ``lax``, which
  their convolution kernels run best (compiled for a TPU v5e the CPU forms
  need twice the temporary memory and 1.8x the HBM traffic).
* ``lax``: ``jax.lax.conv_transpose``, the reference.

The platform is ``layers.kernel_platform()``. Measurements of each form are in
``experiments/results/cifar10.md``; all are tested equal to a NumPy scatter
reference and to ``flax.linen.ConvTranspose``, values and gradients.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from simvae_jax.models.layers import kernel_platform

TRANSPOSED_CONV_METHODS = ("auto", "phases", "scatter", "lax")


def _output_size(
    size: int, kernel: int, stride: int, padding: int, output_padding: int
) -> int:
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


def _phase_grid(kernel_size: int, stride: int, padding: int):
  """The stride x stride output phases: ((taps_y, low_y), (taps_x, low_x))
  for each phase (row-major)."""
  axis = [_phase_taps(kernel_size, stride, padding, p) for p in range(stride)]
  return [(y, x) for y in axis for x in axis]


def _interleave(phases: list, stride: int) -> jax.Array:
  """stride**2 row-major phase outputs [N, H, W, C] -> [N, s*H, s*W, C]."""
  batch, height, width, channels = phases[0].shape
  out = jnp.stack(phases).reshape(
      stride, stride, batch, height, width, channels
  )
  out = out.transpose(2, 3, 0, 4, 1, 5)  # [N, H, s, W, s, C]
  return out.reshape(batch, height * stride, width * stride, channels)


def _transposed_conv_phases(x, kernel, stride: int, padding: int):
  """Phase (sub-pixel) form; requires output size == stride * input size."""
  batch, height, width, _ = x.shape
  kernel_size, _, _, out_features = kernel.shape
  phases = []
  for (taps_y, low_y), (taps_x, low_x) in _phase_grid(
      kernel_size, stride, padding
  ):
    if not (taps_y and taps_x):
      phases.append(jnp.zeros((batch, height, width, out_features), x.dtype))
      continue
    sub_kernel = kernel[np.asarray(taps_y)][:, np.asarray(taps_x)]
    pad_y = (-low_y, low_y + len(taps_y) - 1)
    pad_x = (-low_x, low_x + len(taps_x) - 1)
    phases.append(
        jax.lax.conv_general_dilated(
            x,
            sub_kernel,
            window_strides=(1, 1),
            padding=(pad_y, pad_x),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
    )
  return _interleave(phases, stride)


def _transposed_conv_scatter(x, kernel, stride: int, padding: int):
  """GEMM + col2im form; requires output size == stride * input size."""
  batch, height, width, in_features = x.shape
  kernel_size, _, _, out_features = kernel.shape
  taps = kernel.transpose(2, 0, 1, 3).reshape(in_features, -1)  # [in, k*k*out]
  contributions = (x.reshape(-1, in_features) @ taps).reshape(
      batch, height, width, kernel_size, kernel_size, out_features
  )
  phases = []
  for (taps_y, low_y), (taps_x, low_x) in _phase_grid(
      kernel_size, stride, padding
  ):
    total = jnp.zeros((batch, height, width, out_features), x.dtype)
    for offset_y, a in enumerate(taps_y, start=low_y):
      for offset_x, b in enumerate(taps_x, start=low_x):
        # Output m of this phase reads input m + offset: shift by -offset.
        total = total + _shift(contributions[:, :, :, a, b], offset_y, offset_x)
    phases.append(total)
  return _interleave(phases, stride)


def _shift(x: jax.Array, dy: int, dx: int) -> jax.Array:
  """out[:, m, n] = x[:, m + dy, n + dx], zero outside: [N, H, W, C] -> same."""
  _, height, width, _ = x.shape
  padded = jnp.pad(
      x, ((0, 0), (max(-dy, 0), max(dy, 0)), (max(-dx, 0), max(dx, 0)), (0, 0))
  )
  return padded[
      :, max(dy, 0) : max(dy, 0) + height, max(dx, 0) : max(dx, 0) + width
  ]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _transposed_conv_fast(x, kernel, stride: int, padding: int, forward: str):
  """Forward by ``forward`` ('phases' or 'scatter'), gradients by matrix
  products (the scatter form's)."""
  if forward == "phases":
    return _transposed_conv_phases(x, kernel, stride, padding)
  return _transposed_conv_scatter(x, kernel, stride, padding)


def _transposed_conv_fast_forward(x, kernel, stride, padding, forward):
  return _transposed_conv_fast(x, kernel, stride, padding, forward), (x, kernel)


def _cotangent_patches(cotangent, kernel_size: int, stride: int, padding: int):
  """[N, H, W, k*k*out]: for input pixel i and tap (a, b), the output
  cotangent at i * stride - padding + (a, b) (zero outside), tap-major."""
  batch, out_h, out_w, out_features = cotangent.shape
  height, width = out_h // stride, out_w // stride
  phases = cotangent.reshape(batch, height, stride, width, stride, out_features)
  patches = [
      jnp.zeros((batch, height, width, out_features), cotangent.dtype)
  ] * kernel_size**2
  grid = _phase_grid(kernel_size, stride, padding)
  for index, ((taps_y, low_y), (taps_x, low_x)) in enumerate(grid):
    phase = phases[:, :, index // stride, :, index % stride]
    for offset_y, a in enumerate(taps_y, start=low_y):
      for offset_x, b in enumerate(taps_x, start=low_x):
        patches[a * kernel_size + b] = _shift(phase, -offset_y, -offset_x)
  return jnp.concatenate(patches, axis=-1)


def _transposed_conv_fast_backward(
    stride, padding, forward, residuals, cotangent
):
  """dx = patches(g) @ W^T and dW = x^T @ patches(g): two matrix products."""
  del forward
  x, kernel = residuals
  kernel_size, _, in_features, out_features = kernel.shape
  patches = _cotangent_patches(cotangent, kernel_size, stride, padding)
  patches = patches.reshape(-1, kernel_size * kernel_size * out_features)
  taps = kernel.transpose(2, 0, 1, 3).reshape(in_features, -1)  # [in, k*k*out]
  dx = (patches @ taps.T).reshape(x.shape)
  dkernel = (
      (x.reshape(-1, in_features).T @ patches)
      .reshape(in_features, kernel_size, kernel_size, out_features)
      .transpose(1, 2, 0, 3)
  )
  return dx, dkernel


_transposed_conv_fast.defvjp(
    _transposed_conv_fast_forward, _transposed_conv_fast_backward
)


def transposed_conv(
    x: jax.Array,
    kernel: jax.Array,
    stride: int,
    padding: int,
    output_padding: int,
    method: str = "auto",
) -> jax.Array:
  """PyTorch ``conv_transpose2d`` of x [N, H, W, in] with kernel [k, k, in, out].

  Returns [N, H', W', out], H' = (H - 1) * stride - 2 * padding + k + output_padding.
  """
  if method not in TRANSPOSED_CONV_METHODS:
    raise ValueError(
        f"Unknown transposed-convolution method {method!r}; choose "
        f"one of {TRANSPOSED_CONV_METHODS}"
    )
  _, height, width, _ = x.shape
  kernel_size = kernel.shape[0]
  out_h = _output_size(height, kernel_size, stride, padding, output_padding)
  out_w = _output_size(width, kernel_size, stride, padding, output_padding)
  if method == "auto" and kernel_platform() != "cpu":
    method = "lax"
  if method != "lax" and (out_h, out_w) != (stride * height, stride * width):
    method = "lax"  # the phase forms interleave equal-sized phases only
  if method == "auto":
    small = height * width <= kernel_size * kernel_size
    forward = "phases" if stride == 1 and not small else "scatter"
    return _transposed_conv_fast(x, kernel, stride, padding, forward)
  if method == "phases":
    return _transposed_conv_phases(x, kernel, stride, padding)
  if method == "scatter":
    return _transposed_conv_scatter(x, kernel, stride, padding)
  low = kernel_size - 1 - padding
  # transpose_kernel reads the kernel as the forward convolution's (in <-> out).
  return jax.lax.conv_transpose(
      x,
      jnp.swapaxes(kernel, 2, 3),
      (stride, stride),
      ((low, low + output_padding),) * 2,
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      transpose_kernel=True,
  )


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
    bound = 1.0 / math.sqrt(self.features * self.kernel_size**2)
    uniform = lambda rng, shape: jax.random.uniform(
        rng, shape, jnp.float32, -bound, bound
    )
    kernel = self.param(
        "kernel",
        uniform,
        (self.kernel_size, self.kernel_size, in_features, self.features),
    )
    dtype = self.dtype or x.dtype
    y = transposed_conv(
        x.astype(dtype),
        kernel.astype(dtype),
        self.stride,
        self.padding,
        self.output_padding,
        self.method,
    )
    if self.use_bias:
      y = y + self.param("bias", uniform, (self.features,)).astype(dtype)
    return y
