"""Encoder and decoder registries: networks are chosen by name from the config."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from simvae_jax.models.mlp import MLP, MLPDecoder

ENCODERS = {"mlp": MLP}
DECODERS = {"mlp": MLPDecoder}


def _lookup(registry: dict, kind: str, name: str):
  if name not in registry:
    raise ValueError(f"Unknown {kind} {name!r}; choose one of {sorted(registry)}")
  return registry[name]


def make_encoder(model_config, output_dim: int) -> nn.Module:
  """Encoder named ``model_config.encoder`` with ``output_dim`` outputs."""
  cls = _lookup(ENCODERS, "encoder", model_config.encoder)
  return cls(hidden_sizes=tuple(model_config.encoder_hidden), output_dim=output_dim)


def make_decoder(model_config, image_shape: Sequence[int]) -> nn.Module:
  """Decoder named ``model_config.decoder`` producing images of ``image_shape``."""
  cls = _lookup(DECODERS, "decoder", model_config.decoder)
  return cls(hidden_sizes=tuple(model_config.decoder_hidden),
             image_shape=tuple(image_shape))


def make_head(model_config) -> nn.Module:
  """Projection head / expander of discriminative methods: an MLP from the
  representation to ``head_dim`` features."""
  return MLP(hidden_sizes=tuple(model_config.head_hidden),
             output_dim=model_config.head_dim)
