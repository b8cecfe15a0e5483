"""What every method shares: the step interface for methods without state."""

from __future__ import annotations

import jax


class StatelessMethod:
  """Base of methods that carry nothing but parameters (method state ``{}``).

  Subclasses define ``objective(params, views, rng) -> (loss, terms)``.
  """

  # Methods that learn nothing (the random encoder) set this to False.
  trainable = True

  def objective(self, params: dict, views: jax.Array, rng: jax.Array):
    """views float32 [B, J, H, W, C] -> (scalar loss, dict of scalar terms)."""
    raise NotImplementedError

  def init_state(self, params: dict) -> dict:
    del params
    return {}

  def loss(self, params: dict, method_state: dict, views: jax.Array,
           rng: jax.Array):
    """The step's interface: (loss, (terms, new method state))."""
    loss, terms = self.objective(params, views, rng)
    return loss, (terms, method_state)

  def after_update(self, method_state: dict, params: dict) -> dict:
    del params
    return method_state
