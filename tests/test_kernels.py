"""Kernels: every form of the transposed convolution against PyTorch's
definition (a NumPy scatter reference), the max-pool against Flax's, and the
forms ``auto`` picks on each platform."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simvae_jax.models import layers, transposed_conv

# ----------------------------------------------------------------------------
# Transposed convolution: every formulation against PyTorch's definition.
# ----------------------------------------------------------------------------


def scatter_reference(x, kernel, stride, padding, output_padding):
  """PyTorch ConvTranspose2d by definition: input pixel i adds x[i] W[a] to
  output pixel i * stride - padding + a (float64 loops)."""
  batch, height, width, _ = x.shape
  size, _, _, out_features = kernel.shape
  out_h = (height - 1) * stride - 2 * padding + size + output_padding
  out_w = (width - 1) * stride - 2 * padding + size + output_padding
  out = np.zeros((batch, out_h, out_w, out_features))
  for i in range(height):
    for j in range(width):
      for a in range(size):
        for b in range(size):
          y, z = i * stride - padding + a, j * stride - padding + b
          if 0 <= y < out_h and 0 <= z < out_w:
            out[:, y, z] += x[:, i, j].astype(np.float64) @ kernel[a, b]
  return out


# (input side, kernel, stride, padding, output_padding): the decoder's layers
# (3x3 stride 1 and 2, 1x1 stride-2 skip, 7x7 final) at the sizes it uses.
LAYER_SHAPES = [
    (2, 3, 1, 1, 0),
    (2, 3, 2, 1, 1),
    (4, 3, 2, 1, 1),
    (5, 3, 1, 1, 0),
    (4, 1, 2, 0, 1),
    (5, 7, 2, 3, 1),
]


@pytest.mark.parametrize("method", ["auto", "phases", "scatter", "lax"])
@pytest.mark.parametrize(
    "side, kernel_size, stride, padding, output_padding", LAYER_SHAPES
)
def test_transposed_conv_matches_the_definition(
    method, side, kernel_size, stride, padding, output_padding
):
  rng = np.random.default_rng(side * kernel_size + stride)
  x = rng.normal(size=(2, side, side, 3)).astype(np.float32)
  kernel = rng.normal(size=(kernel_size, kernel_size, 3, 5)).astype(np.float32)
  got = transposed_conv.transposed_conv(
      jnp.asarray(x),
      jnp.asarray(kernel),
      stride,
      padding,
      output_padding,
      method,
  )
  expected = scatter_reference(x, kernel, stride, padding, output_padding)
  assert got.shape == expected.shape
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
  # ... and Flax's ConvTranspose with the same kernel (in/out swapped, flipped).
  low = kernel_size - 1 - padding
  flax_layer = nn.ConvTranspose(
      5,
      (kernel_size, kernel_size),
      strides=(stride, stride),
      padding=((low, low + output_padding),) * 2,
      transpose_kernel=True,
      use_bias=False,
  )
  flax_out = flax_layer.apply(
      {"params": {"kernel": np.swapaxes(kernel, 2, 3)}}, x
  )
  np.testing.assert_allclose(got, flax_out, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "method",
    ["auto", "phases", pytest.param("scatter", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize(
    "side, kernel_size, stride, padding, output_padding", LAYER_SHAPES
)
def test_transposed_conv_gradients_equal_the_reference_form(
    method, side, kernel_size, stride, padding, output_padding
):
  """``auto`` has a hand-written backward (patches of the cotangent and two
  matrix products): its gradients must equal autodiff of the reference."""
  rng = np.random.default_rng(side + kernel_size)
  x = jnp.asarray(rng.normal(size=(2, side, side, 3)), jnp.float32)
  kernel = jnp.asarray(
      rng.normal(size=(kernel_size, kernel_size, 3, 5)), jnp.float32
  )
  out = transposed_conv.transposed_conv(
      x, kernel, stride, padding, output_padding, "lax"
  )
  cotangent = jnp.asarray(rng.normal(size=out.shape), jnp.float32)
  loss = lambda m: (
      lambda x, k: jnp.sum(
          jnp.sin(
              cotangent
              * transposed_conv.transposed_conv(
                  x, k, stride, padding, output_padding, m
              )
          )
      )
  )
  got = jax.grad(loss(method), argnums=(0, 1))(x, kernel)
  reference = jax.grad(loss("lax"), argnums=(0, 1))(x, kernel)
  for g, r in zip(got, reference):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_unknown_transposed_conv_method_is_rejected():
  with pytest.raises(ValueError, match="phases"):
    transposed_conv.transposed_conv(
        jnp.zeros((1, 2, 2, 1)), jnp.zeros((3, 3, 1, 1)), 1, 1, 0, "fft"
    )


def pooled_and_gradient(pool):
  """Compiled x -> (pool(x), gradient of sum(sin(pool(x)))), as the networks
  run it (op by op, the rewrite's slices took up to 20 s in the suite)."""
  loss = lambda x: jnp.sum(jnp.sin(pool(x)))
  return jax.jit(lambda x: (pool(x), jax.grad(loss)(x)))


@pytest.mark.parametrize(
    "side", [15, 30, pytest.param(31, marks=pytest.mark.slow)]
)
def test_max_pool_equals_flax_max_pool_with_gradient(side):
  x = jnp.asarray(
      np.random.default_rng(side).normal(size=(2, side, side, 3)), jnp.float32
  )
  reference = lambda x: nn.max_pool(
      x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1))
  )
  value, gradient = pooled_and_gradient(layers.max_pool_3x3_stride_2)(x)
  expected, expected_gradient = pooled_and_gradient(reference)(x)
  np.testing.assert_array_equal(value, expected)
  np.testing.assert_array_equal(gradient, expected_gradient)


def conv_network_loss_gradient(conv_method, platform, compute: bool):
  """The gradient of the tiny conv networks' loss traced for ``platform``:
  its program as text and, if ``compute``, its values (here on CPU)."""
  method, params, state = conv_method
  views = jax.random.uniform(jax.random.PRNGKey(6), (4, 2, 8, 8, 1))
  loss = lambda p: method.objective(p, state, views, jax.random.PRNGKey(7))[0]
  with layers.compiling_for(platform):  # traced (and compiled) inside
    text = str(jax.make_jaxpr(jax.grad(loss))(params))
    gradients = jax.jit(jax.grad(loss))(params) if compute else None
  return text, gradients


@pytest.mark.slow
def test_auto_kernels_are_cpu_forms_on_cpu_only(conv_method):
  """``auto`` runs the CPU-tuned transposed convolution (a custom_vjp) and
  max-pool rewrite on CPU, XLA's own convolution and reduce_window on GPU
  and TPU; both compute the same gradients."""
  cpu_text, cpu_gradients = conv_network_loss_gradient(conv_method, "cpu", True)
  assert "custom_vjp" in cpu_text and "reduce_window" not in cpu_text
  tpu_text, _ = conv_network_loss_gradient(conv_method, "tpu", False)
  gpu_text, gpu_gradients = conv_network_loss_gradient(conv_method, "gpu", True)
  for text in (tpu_text, gpu_text):
    assert "custom_vjp" not in text and "reduce_window_max" in text
    assert "lhs_dilation=(2, 2)" in text  # lax.conv_transpose of stride 2
  for gradients in (cpu_gradients, gpu_gradients):
    # The stem bias feeds BatchNorm: its gradient is rounding noise (below).
    del gradients["encoder"]["Conv_0"]["bias"]
  for a, b in zip(
      jax.tree.leaves(cpu_gradients), jax.tree.leaves(gpu_gradients)
  ):
    # Other summation orders: float32 rounding of a leaf's largest entry.
    assert np.max(np.abs(b - a)) <= 1e-3 * np.max(np.abs(a))


def test_the_kernel_platform_defaults_to_the_backend():
  assert layers.kernel_platform() == jax.default_backend() == "cpu"
  with layers.compiling_for("cuda"):
    assert layers.kernel_platform() == "gpu"
  assert layers.kernel_platform() == "cpu"
