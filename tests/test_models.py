"""Networks: exact parameter counts and shapes, the registry's sections, BatchNorm
state and bfloat16."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simvae_jax import methods, models
from simvae_jax.models import resnet

from conftest import initialised, tiny_conv_config


def abstract_params(module, example_shape):
  """Parameter shapes without computing anything (full-size networks)."""
  variables = jax.eval_shape(
      lambda: module.init(
          jax.random.PRNGKey(0), jnp.zeros(example_shape), train=False
      )
  )
  return variables["params"], variables


def output_shape(module, example_shape, batch=2):
  _, variables = abstract_params(module, example_shape)
  inputs = jax.ShapeDtypeStruct((batch, *example_shape[1:]), jnp.float32)
  return jax.eval_shape(
      lambda v, x: module.apply(v, x, train=False), variables, inputs
  ).shape


# ----------------------------------------------------------------------------
# Parameter counts and shapes (the released code's and the SSL ResNet-18).
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("side, expected", [(32, 969_920), (64, 1_757_632)])
def test_authors_encoder_parameter_count(side, expected):
  encoder = resnet.AuthorsResNetEncoder(output_dim=128)
  params, _ = abstract_params(encoder, (1, side, side, 3))
  assert models.count_parameters(params) == expected
  assert output_shape(encoder, (1, side, side, 3)) == (2, 128)


def test_authors_encoder_stem_follows_the_image_size():
  small, _ = abstract_params(
      resnet.AuthorsResNetEncoder(output_dim=128), (1, 32, 32, 3)
  )
  large, _ = abstract_params(
      resnet.AuthorsResNetEncoder(output_dim=128), (1, 64, 64, 3)
  )
  assert (
      small["Conv_0"]["kernel"].shape == (3, 3, 3, 64)
      and "bias" in small["Conv_0"]
  )
  assert (
      large["Conv_0"]["kernel"].shape == (4, 4, 3, 64)
      and "bias" not in large["Conv_0"]
  )
  # flatten 4x4x128 (32 px) and 8x8x128 (64 px) into the output layer
  assert small["Dense_0"]["kernel"].shape == (2048, 128)
  assert large["Dense_0"]["kernel"].shape == (8192, 128)


@pytest.mark.parametrize("side", [32, 64])
def test_authors_decoder_parameter_count_and_shape(side):
  decoder = resnet.AuthorsResNetDecoder(image_shape=(side, side, 3))
  params, variables = abstract_params(decoder, (1, 64))
  if side == 32:
    assert models.count_parameters(params) == 8_984_387
  assert output_shape(decoder, (1, 64), batch=3) == (3, side, side, 3)
  assert "batch_stats" in variables


def test_resnet18_trunk_has_the_standard_parameter_count():
  encoder = resnet.ResNet18Encoder(output_dim=64)
  params, _ = abstract_params(encoder, (1, 32, 32, 3))
  output_layer = 512 * 64 + 64
  assert models.count_parameters(params) - output_layer == 11_168_832
  assert output_shape(encoder, (1, 32, 32, 3)) == (2, 64)


def test_decoder_rejects_image_sizes_it_cannot_make():
  decoder = resnet.AuthorsResNetDecoder(image_shape=(28, 28, 1))
  with pytest.raises(ValueError, match="multiple of 16"):
    abstract_params(decoder, (1, 10))


def test_registry_sections_are_the_constructor_arguments():
  config = tiny_conv_config()
  encoder = models.make_encoder(config.model, output_dim=6)
  assert isinstance(encoder, resnet.AuthorsResNetEncoder)
  assert tuple(encoder.stage_widths) == (4, 8, 8) and encoder.stem_width == 8
  defaults = models.hyperparameter_defaults(models.ENCODERS)
  assert defaults["resnet18"]["stage_widths"] == (64, 128, 256, 512)
  config.model.encoder = "vit"
  with pytest.raises(ValueError, match="resnet18"):
    models.make_encoder(config.model, output_dim=6)


# ----------------------------------------------------------------------------
# BatchNorm state.
# ----------------------------------------------------------------------------


@pytest.mark.slow
def test_init_returns_batch_statistics_for_conv_networks(conv_method):
  _, _, state = conv_method
  assert set(state) == {"encoder", "decoder"}
  assert set(state["encoder"]) == {"batch_stats"}


@pytest.mark.slow
def test_inference_representations_do_not_depend_on_the_batch(conv_method):
  method, params, state = conv_method
  images = jax.random.uniform(jax.random.PRNGKey(1), (6, 8, 8, 1))
  # Compiled: conv networks run slowly eagerly, op by op.
  represent = jax.jit(method.represent)
  alone = represent(params, state, images[:2])
  together = represent(params, state, images)[:2]
  np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)
  # In training mode batch statistics do mix the images.
  encode = jax.jit(method.autoencoder.encode, static_argnames="train")
  train_alone, _ = encode(params, state, images[:2], train=True)
  train_together, _ = encode(params, state, images, train=True)
  assert not np.allclose(train_alone[0], train_together[0][:2], atol=1e-4)


@pytest.mark.slow
def test_training_pass_updates_running_averages_with_momentum_0_9(conv_method):
  method, params, state = conv_method
  views = jax.random.uniform(jax.random.PRNGKey(2), (4, 2, 8, 8, 1))
  new_state = jax.jit(lambda *a: method.autoencoder.pass_views(*a)[1])(
      params, state, views, jax.random.PRNGKey(3)
  )
  # The stem BatchNorm sees the stem conv's outputs over all 8 views.
  flat = views.reshape(8, 8, 8, 1)
  stem = nn.Conv(8, (3, 3), padding="VALID").apply(
      {"params": params["encoder"]["Conv_0"]}, flat
  )
  old = state["encoder"]["batch_stats"]["BatchNorm_0"]
  new = new_state["encoder"]["batch_stats"]["BatchNorm_0"]
  np.testing.assert_allclose(
      new["mean"],
      0.9 * old["mean"] + 0.1 * stem.mean((0, 1, 2)),
      rtol=1e-4,
      atol=1e-6,
  )
  np.testing.assert_allclose(
      new["var"],
      0.9 * old["var"] + 0.1 * stem.var((0, 1, 2)),
      rtol=1e-4,
      atol=1e-6,
  )


@pytest.mark.slow
def test_stem_bias_before_batchnorm_gets_no_gradient(conv_method):
  """The released encoder's stem conv bias is followed by BatchNorm, which
  removes any per-channel constant: its gradient vanishes (up to rounding)."""
  method, params, state = conv_method
  views = jax.random.uniform(jax.random.PRNGKey(4), (4, 2, 8, 8, 1))
  grads = jax.jit(
      jax.grad(
          lambda p: method.objective(p, state, views, jax.random.PRNGKey(5))[0]
      )
  )(params)
  stem = grads["encoder"]["Conv_0"]
  assert float(jnp.max(jnp.abs(stem["bias"]))) < 1e-4 * float(
      jnp.max(jnp.abs(stem["kernel"]))
  )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["simvae", "simclr"])
def test_bfloat16_loss_is_close_to_float32(name):
  """bfloat16 layers with float32 parameters: the loss on a fixed batch is
  within 3% of float32 (measured: SimVAE 1.3%, SimCLR 0.1%); parameters and
  the loss stay float32."""
  views = jax.random.uniform(jax.random.PRNGKey(1), (16, 3, 8, 8, 1))
  losses = {}
  for dtype in ("float32", "bfloat16"):
    config = tiny_conv_config(method=name, **{"model.dtype": dtype})
    method = methods.make_method(config, (8, 8, 1))
    params, state = initialised(method, (8, 8, 1))
    assert {x.dtype for x in jax.tree.leaves(params)} == {np.dtype("float32")}
    method_state = method.init_method_state(
        params, state, jax.random.PRNGKey(3)
    )
    loss, _ = jax.jit(method.loss)(
        params, state, method_state, views, jax.random.PRNGKey(2)
    )
    assert loss.dtype == jnp.float32
    losses[dtype] = float(loss)
  assert losses["bfloat16"] != losses["float32"]  # the layers did run in bf16
  assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=3e-2)
