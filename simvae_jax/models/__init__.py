"""Network registries and how networks with batch statistics are applied.

Encoders and decoders are chosen by name (``model.encoder``, ``model.decoder``);
each architecture's hyperparameters live in its own config sub-section
(``model.encoders.<name>``, ``model.decoders.<name>``), whose defaults are the
module's own field defaults. Adding an architecture is one module plus one
registry line.

Variables are split as Flax does: ``params`` (trained by the optimizer) and the
other collections (``batch_stats``), called the network's *state* here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from simvae_jax.models.mlp import MLP, MLPDecoder
from simvae_jax.models.resnet import (
    AuthorsResNetDecoder,
    AuthorsResNetEncoder,
    ResNet18Encoder,
)

ENCODERS = {
    "mlp": MLP,
    "resnet_authors": AuthorsResNetEncoder,
    "resnet18": ResNet18Encoder,
}
DECODERS = {"mlp": MLPDecoder, "resnet_authors": AuthorsResNetDecoder}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# Constructor fields the registry sets itself rather than the config section.
_BUILT_IN_FIELDS = ("output_dim", "image_shape", "dtype", "parent", "name")


def hyperparameter_defaults(registry: dict) -> dict:
  """{architecture: {field: default}} of the registry's modules (for configs)."""
  return {
      name: {
          field.name: field.default
          for field in dataclasses.fields(cls)
          if field.name not in _BUILT_IN_FIELDS
          and field.default is not dataclasses.MISSING
      }
      for name, cls in registry.items()
  }


def _lookup(registry: dict, kind: str, name: str):
  if name not in registry:
    raise ValueError(
        f"Unknown {kind} {name!r}; choose one of {sorted(registry)}"
    )
  return registry[name]


def _section(sections, name: str) -> dict:
  section = sections.get(name) if sections is not None else None
  return {} if section is None else dict(section)


def dtype_of(model_config):
  """The computation dtype named by ``model.dtype``."""
  return _lookup(DTYPES, "model.dtype", model_config.get("dtype", "float32"))


def make_encoder(model_config, output_dim: int) -> nn.Module:
  """Encoder ``model.encoder`` with ``output_dim`` outputs."""
  name = model_config.encoder
  cls = _lookup(ENCODERS, "encoder", name)
  return cls(
      output_dim=output_dim,
      dtype=dtype_of(model_config),
      **_section(model_config.get("encoders"), name),
  )


def make_decoder(model_config, image_shape: Sequence[int]) -> nn.Module:
  """Decoder ``model.decoder`` producing images of ``image_shape``."""
  name = model_config.decoder
  cls = _lookup(DECODERS, "decoder", name)
  return cls(
      image_shape=tuple(image_shape),
      dtype=dtype_of(model_config),
      **_section(model_config.get("decoders"), name),
  )


def make_head(model_config) -> nn.Module:
  """Projection head / expander of discriminative methods: an MLP from the
  representation to ``head_dim`` features."""
  return MLP(
      output_dim=model_config.head_dim,
      hidden_sizes=tuple(model_config.head_hidden),
      dtype=dtype_of(model_config),
  )


def init_network(module: nn.Module, rng: jax.Array, example: jax.Array):
  """(params, state) of ``module`` for inputs like ``example``; state ``{}``
  for networks without batch statistics."""
  variables = dict(module.init(rng, example, train=False))
  return variables.pop("params"), variables


def apply_network(
    module: nn.Module, params, state, inputs: jax.Array, train: bool
):
  """Applies ``module``; returns (float32 outputs, new state).

  In training (``train=True``) batch statistics are those of ``inputs`` and
  the running averages in ``state`` are updated; otherwise the running
  averages are used and ``state`` is returned unchanged.
  """
  variables = {"params": params, **state}
  if train and state:
    outputs, state = module.apply(
        variables, inputs, train=True, mutable=list(state)
    )
    state = dict(state)
  else:
    outputs = module.apply(variables, inputs, train=train)
  return outputs.astype(jnp.float32), state


def count_parameters(params: Any) -> int:
  return sum(int(x.size) for x in jax.tree.leaves(params))
