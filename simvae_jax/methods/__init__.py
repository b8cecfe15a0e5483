"""Method registry: ``--config.method=NAME`` selects the objective.

Every method implements the interface of ``base.Method`` (init, loss,
after_update, represent, decode_representations); generative methods (``generative =
True``) also ``sample``, discriminative ones have a ``decoder_loss`` for their
post-hoc decoder; ``trainable`` is False for the random encoder, which is never
updated.

A method is one module ending in a ``base.MethodSpec`` (its config section
with defaults, the views it needs) and one line below. Everything else (the
config's sections, experiments, tests) reads this registry. A method defined
outside the package is added with ``register(spec)`` before its config is
built.
"""

from __future__ import annotations

from typing import Sequence

from simvae_jax.methods import cr_vae, discriminative, moco, simclr, simvae
from simvae_jax.methods import vae, vicreg
from simvae_jax.methods.base import Method, MethodSpec

# name -> spec, in the paper's table order.
REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
  """Makes ``spec`` a ``--config.method``; configs built afterwards get its
  section ``config.<name>``."""
  if REGISTRY.get(spec.name, spec) is not spec:
    raise ValueError(f"A different method is registered as {spec.name!r}")
  REGISTRY[spec.name] = spec
  return spec


register(discriminative.SPEC)
register(simclr.SPEC)
register(moco.SPEC)
register(vicreg.SPEC)
register(vae.VAE_SPEC)
register(vae.BETA_VAE_SPEC)
register(cr_vae.SPEC)
register(simvae.SPEC)


def names() -> tuple[str, ...]:
  """Every registered method's name, in registration order."""
  return tuple(REGISTRY)


def spec(name: str) -> MethodSpec:
  if name not in REGISTRY:
    raise ValueError(f"Unknown method {name!r}; choose one of {list(REGISTRY)}")
  return REGISTRY[name]


def generative() -> tuple[str, ...]:
  return tuple(n for n, s in REGISTRY.items() if s.generative)


def self_supervised() -> tuple[str, ...]:
  """The discriminative methods that learn by comparing views."""
  return tuple(n for n, s in REGISTRY.items() if s.self_supervised)


def min_views(name: str) -> int:
  """The smallest J the method ``name`` trains with."""
  return spec(name).min_views


def make_method(config, image_shape: Sequence[int]) -> Method:
  """Builds the method named ``config.method``."""
  return spec(config.method).build(config, image_shape)
