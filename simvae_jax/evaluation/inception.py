"""InceptionV3 up to its 2048-d pool3 features, as FID uses it (pytorch-fid's
variant of the TensorFlow FID network: average pools that exclude padding in
the A/C/E blocks, a max pool in the last block).

The weights are not downloaded here: the user supplies them as an ``.npz`` of
the pytorch-fid state dict (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch1x1.bn.running_mean``, ...; PyTorch layouts). Make it once
from pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (released with
pytorch-fid on GitHub) on any machine with PyTorch::

  python -m simvae_jax.evaluation.inception --convert=pt_inception-2015-12-05-6726825d.pth \\
      --out=inception_fid.npz

and pass ``--config.fid.inception_weights=inception_fid.npz``.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

INPUT_SIZE = 299


class ConvBN(nn.Module):
  """Conv (no bias) + BatchNorm (eps 1e-3, running averages) + ReLU."""

  features: int
  kernel: Sequence[int]
  stride: int = 1
  padding: Sequence[int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    pad = tuple((p, p) for p in self.padding)
    x = nn.Conv(
        self.features,
        tuple(self.kernel),
        (self.stride,) * 2,
        pad,
        use_bias=False,
        name="conv",
    )(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_excluding_padding(x):
  """3x3 stride-1 average pool, padding 1, padded cells not counted."""
  total = nn.avg_pool(
      x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=True
  )
  ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
  count = nn.avg_pool(
      ones, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=True
  )
  return total / count


def _max_pool(x, stride: int, padding: int = 0):
  pad = ((padding, padding),) * 2
  return nn.max_pool(x, (3, 3), (stride, stride), pad)


class BlockA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = ConvBN(64, (1, 1), name="branch1x1")(x)
    b5 = ConvBN(48, (1, 1), name="branch5x5_1")(x)
    b5 = ConvBN(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    pool = ConvBN(self.pool_features, (1, 1), name="branch_pool")(
        _avg_pool_excluding_padding(x)
    )
    return jnp.concatenate([b1, b5, b3, pool], axis=-1)


class BlockB(nn.Module):

  @nn.compact
  def __call__(self, x):
    b3 = ConvBN(384, (3, 3), stride=2, name="branch3x3")(x)
    bd = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
    bd = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = ConvBN(96, (3, 3), stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool(x, 2)], axis=-1)


class BlockC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    b1 = ConvBN(192, (1, 1), name="branch1x1")(x)
    b7 = ConvBN(c, (1, 1), name="branch7x7_1")(x)
    b7 = ConvBN(c, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = ConvBN(c, (1, 1), name="branch7x7dbl_1")(x)
    bd = ConvBN(c, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = ConvBN(c, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = ConvBN(c, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    pool = ConvBN(192, (1, 1), name="branch_pool")(
        _avg_pool_excluding_padding(x)
    )
    return jnp.concatenate([b1, b7, bd, pool], axis=-1)


class BlockD(nn.Module):

  @nn.compact
  def __call__(self, x):
    b3 = ConvBN(192, (1, 1), name="branch3x3_1")(x)
    b3 = ConvBN(320, (3, 3), stride=2, name="branch3x3_2")(b3)
    b7 = ConvBN(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = ConvBN(192, (3, 3), stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool(x, 2)], axis=-1)


class BlockE(nn.Module):
  max_pool: bool  # the last block pools by max, the one before by average

  @nn.compact
  def __call__(self, x):
    b1 = ConvBN(320, (1, 1), name="branch1x1")(x)
    b3 = ConvBN(384, (1, 1), name="branch3x3_1")(x)
    b3 = jnp.concatenate(
        [
            ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
            ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
        ],
        axis=-1,
    )
    bd = ConvBN(448, (1, 1), name="branch3x3dbl_1")(x)
    bd = ConvBN(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate(
        [
            ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
            ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
        ],
        axis=-1,
    )
    pooled = (
        _max_pool(x, 1, 1) if self.max_pool else _avg_pool_excluding_padding(x)
    )
    pool = ConvBN(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, pool], axis=-1)


class InceptionV3Pool3(nn.Module):
  """Images [N, H, W, C] in [0, 1] (C = 1 or 3) -> pool3 features [N, 2048].

  Images are resized to 299x299 (bilinear), grey ones repeated to RGB, and
  scaled to [-1, 1], as pytorch-fid does.
  """

  @nn.compact
  def __call__(self, images):
    x = jnp.asarray(images, jnp.float32)
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, 3), "bilinear")
    x = 2.0 * x - 1.0
    x = ConvBN(32, (3, 3), stride=2, name="Conv2d_1a_3x3")(x)
    x = ConvBN(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = ConvBN(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool(x, 2)
    x = ConvBN(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = ConvBN(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool(x, 2)
    x = BlockA(32, name="Mixed_5b")(x)
    x = BlockA(64, name="Mixed_5c")(x)
    x = BlockA(64, name="Mixed_5d")(x)
    x = BlockB(name="Mixed_6a")(x)
    for name, channels in (
        ("Mixed_6b", 128),
        ("Mixed_6c", 160),
        ("Mixed_6d", 160),
        ("Mixed_6e", 192),
    ):
      x = BlockC(channels, name=name)(x)
    x = BlockD(name="Mixed_7a")(x)
    x = BlockE(False, name="Mixed_7b")(x)
    x = BlockE(True, name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


def variables_from_state_dict(arrays) -> dict:
  """Flax variables of ``InceptionV3Pool3`` from pytorch-fid state-dict arrays
  (``name.conv.weight`` [out, in, kh, kw], ``name.bn.{weight,bias,running_mean,
  running_var}``); other entries (the classifier) are ignored."""
  params, stats = {}, {}
  for key, value in arrays.items():
    parts = key.split(".")
    if len(parts) < 3 or parts[-2] not in ("conv", "bn"):
      continue
    *path, layer, field = parts
    value = np.asarray(value, np.float32)
    if layer == "conv" and field == "weight":
      _nested(params, path + ["conv"])["kernel"] = value.transpose(2, 3, 1, 0)
    elif layer == "bn" and field in ("weight", "bias"):
      _nested(params, path + ["bn"])[
          "scale" if field == "weight" else "bias"
      ] = value
    elif layer == "bn" and field in ("running_mean", "running_var"):
      _nested(stats, path + ["bn"])[
          "mean" if field == "running_mean" else "var"
      ] = value
  return {"params": params, "batch_stats": stats}


def _nested(tree: dict, path: list[str]) -> dict:
  for name in path:
    tree = tree.setdefault(name, {})
  return tree


def load_weights(path: str) -> dict:
  """Flax variables from a converted pytorch-fid ``.npz`` (see module doc)."""
  with np.load(path) as arrays:
    variables = variables_from_state_dict(dict(arrays))
  expected = jax.eval_shape(
      InceptionV3Pool3().init, jax.random.PRNGKey(0), jnp.zeros((1, 75, 75, 3))
  )
  got = jax.tree.map(np.shape, variables)
  want = jax.tree.map(lambda x: x.shape, expected)
  if got != want:
    raise ValueError(
        f"{path} does not hold pytorch-fid InceptionV3 weights "
        f"(names or shapes differ from the network's)."
    )
  return variables


@functools.lru_cache(maxsize=None)
def _apply():
  return jax.jit(InceptionV3Pool3().apply)


def features(variables: dict, images) -> jax.Array:
  """pool3 features [N, 2048] of images [N, H, W, C] in [0, 1]."""
  return _apply()(variables, images)


def convert(torch_file: str, out: str) -> None:
  """pytorch-fid's ``.pth`` -> ``.npz`` (needs PyTorch; run once anywhere)."""
  import torch  # pylint: disable=import-outside-toplevel

  state = torch.load(torch_file, map_location="cpu")
  np.savez(out, **{k: v.numpy() for k, v in state.items()})


if __name__ == "__main__":
  import argparse

  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--convert", required=True, help="pytorch-fid .pth file")
  parser.add_argument("--out", required=True, help=".npz to write")
  arguments = parser.parse_args()
  convert(arguments.convert, arguments.out)
  print(f"Wrote {arguments.out}")
