"""A method is one module and one ``methods.register`` line.

This module defines a method the package does not know, alignment and
uniformity on the hypersphere (Wang & Isola 2020), registers it from here, and
trains and evaluates it through the command line's code path.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, run, tiny_digits_config

from simvae_jax import methods, outputs
from simvae_jax.methods.base import MethodSpec
from simvae_jax.methods.discriminative import (
    DiscriminativeMethod,
    flatten_views,
    l2_normalize,
)


def alignment_and_uniformity(embeddings: jax.Array, t: float) -> dict:
  """Embeddings [B, J, E] -> {"alignment": mean squared distance between the
  normalised views of an image, "uniformity": log mean exp(-t * squared
  distance) over all pairs of distinct rows}."""
  batch, num_views = embeddings.shape[:2]
  z = l2_normalize(flatten_views(embeddings))  # [B * J, E]
  squared = jnp.sum(jnp.square(z[:, None] - z[None]), axis=-1)
  image = jnp.repeat(jnp.arange(batch), num_views)
  distinct = ~jnp.eye(batch * num_views, dtype=bool)
  same_image = (image[:, None] == image[None]) & distinct
  alignment = jnp.sum(jnp.where(same_image, squared, 0.0)) / same_image.sum()
  uniformity = jnp.log(
      jnp.sum(jnp.where(distinct, jnp.exp(-t * squared), 0.0)) / distinct.sum()
  )
  return {"alignment": alignment, "uniformity": uniformity}


@dataclasses.dataclass(frozen=True)
class AlignmentUniformity(DiscriminativeMethod):
  uniformity_weight: float
  t: float

  def embedding_loss(self, embeddings: jax.Array):
    terms = alignment_and_uniformity(embeddings, self.t)
    return (
        terms["alignment"] + self.uniformity_weight * terms["uniformity"],
        terms,
    )


SPEC = MethodSpec(
    "alignment_uniformity",
    AlignmentUniformity,
    defaults=dict(uniformity_weight=1.0, t=2.0),
    min_views=2,
)


@pytest.fixture
def registered(monkeypatch):
  """The registry with SPEC added, as it was again after the test."""
  monkeypatch.setattr(methods, "REGISTRY", dict(methods.REGISTRY))
  return methods.register(SPEC)


def reference_terms(embeddings: np.ndarray, t: float) -> dict:
  """The two terms by loops over rows, in float64."""
  batch, views, _ = embeddings.shape
  z = embeddings.reshape(batch * views, -1).astype(np.float64)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  aligned, spread = [], []
  for i in range(len(z)):
    for k in range(len(z)):
      if i != k:
        distance = np.sum((z[i] - z[k]) ** 2)
        spread.append(np.exp(-t * distance))
        if i // views == k // views:
          aligned.append(distance)
  return {"alignment": np.mean(aligned), "uniformity": np.log(np.mean(spread))}


def test_the_throwaway_loss_matches_its_reference():
  embeddings = np.random.default_rng(0).normal(size=(5, 3, 4))
  terms = alignment_and_uniformity(jnp.asarray(embeddings, jnp.float32), 2.0)
  for name, value in reference_terms(embeddings, 2.0).items():
    np.testing.assert_allclose(float(terms[name]), value, rtol=1e-5)


def test_a_registered_method_gets_its_config_section_and_views_check(
    registered,
):
  config = tiny_digits_config(method=registered.name)
  assert config.alignment_uniformity.to_dict() == {
      "uniformity_weight": 1.0,
      "t": 2.0,
  }
  config.alignment_uniformity.t = 3.0
  method = methods.make_method(config, (8, 8, 1))
  assert isinstance(method, AlignmentUniformity) and method.t == 3.0
  assert methods.min_views(registered.name) == 2
  assert registered.name in methods.self_supervised()
  config.num_views = 1
  with pytest.raises(ValueError, match="needs num_views >= 2, got 1"):
    methods.make_method(config, (8, 8, 1))


def test_registering_another_method_under_a_taken_name_fails(registered):
  with pytest.raises(ValueError, match="A different method is registered"):
    methods.register(dataclasses.replace(registered, min_views=3))
  assert methods.register(registered) is registered  # the same: no change


def test_the_registry_holds_the_papers_methods_and_the_readme_lists_them():
  assert set(methods.names()) == {
      "random",
      "simclr",
      "moco",
      "vicreg",
      "vae",
      "beta_vae",
      "cr_vae",
      "simvae",
  }
  readme = (REPO / "README.md").read_text()
  section = readme[readme.index("## Methods") :]
  table = section[: section.index("\n\n", section.index("| method |"))]
  listed = re.findall(r"^\| `(\w+)` \|", table, flags=re.M)
  assert listed == list(methods.names())


# The command line (simvae_jax/main.py) in a process that first imports this
# module and registers its method, as a user's own package would.
CLI = (
    "import sys; sys.path.insert(0, 'tests'); import test_registry; "
    "from simvae_jax import methods, main; "
    "methods.register(test_registry.SPEC); "
    "main.run()"
)


@pytest.mark.slow
def test_a_method_registered_outside_the_package_trains_and_evaluates(
    tmp_path,
):
  result = run(
      [
          sys.executable,
          "-c",
          CLI,
          "--config=configs/digits.py",
          f"--workdir={tmp_path}",
          "--config.method=alignment_uniformity",
          "--config.alignment_uniformity.t=3.0",
          "--config.num_steps=30",
          "--config.log_every=10",
          "--config.eval.probe_epochs=5",
          "--config.eval.compare_untrained=False",
          "--config.posthoc_decoder.num_steps=5",
      ]
  )
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = outputs.read_jsonl(str(tmp_path / "metrics.jsonl"))
  losses = [m["loss"] for m in metrics if "loss" in m]
  assert set(metrics[-1]) >= {"alignment", "uniformity"}
  assert losses[-1] < losses[0]
  final = json.loads((tmp_path / "eval.json").read_text())
  assert final["label"]["knn_acc"] > 0.5  # ten classes: chance is 0.1
  resolved = json.loads((tmp_path / "config.json").read_text())
  assert resolved["alignment_uniformity"] == {
      "uniformity_weight": 1.0,
      "t": 3.0,
  }
