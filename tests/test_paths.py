"""A workdir on an object store (``gs://...``): every file of a run goes
through ``etils.epath``, none to a local folder named after the URL."""

import jax
import numpy as np
from etils import epath

from simvae_jax import posthoc_decoder
from simvae_jax import workdir as run_dir
from simvae_jax.train import Experiment

from conftest import tiny_digits_config


def test_a_gs_workdir_writes_through_epath_and_creates_no_local_folder(
    tmp_path, monkeypatch
):
  bucket, cwd = tmp_path / "bucket", tmp_path / "cwd"
  bucket.mkdir()
  cwd.mkdir()
  monkeypatch.chdir(cwd)
  local = lambda path: str(path).replace("gs://bucket", str(bucket))
  redirected = lambda fn, path, *args, **kwargs: fn(
      local(path), *args, **kwargs
  )
  names = ("exists", "isdir", "listdir", "makedirs", "mkdir", "open", "stat")
  experiment = Experiment.from_config(tiny_digits_config(method="simclr"))
  state = experiment.initial_state()
  workdir = "gs://bucket/run"
  with epath.testing.mock_epath(**{name: redirected for name in names}):
    run_dir.prepare(workdir)
    run_dir.write_config(experiment.config, workdir)
    run_dir.write_run_info(workdir, experiment.image_shape)
    decoder = posthoc_decoder.initial_decoder(experiment)
    posthoc_decoder.save(
        workdir,
        {**state.params, "decoder": decoder[0]},
        state.model_state,
    )
    zeros = jax.tree.map(np.zeros_like, decoder)
    restored, _ = posthoc_decoder.restore(
        workdir, state.params, state.model_state, zeros
    )
    info = run_dir.read_run_info(workdir)
  assert sorted(p.name for p in (bucket / "run").iterdir()) == [
      "config.json",
      posthoc_decoder.FILE,
      run_dir.RUN_FILE,
  ]
  assert info == {"image_shape": [8, 8, 1]}
  for saved, read in zip(
      jax.tree.leaves(decoder[0]),
      jax.tree.leaves(restored["decoder"]),
  ):
    np.testing.assert_array_equal(saved, read)
  assert list(cwd.iterdir()) == []  # no ./gs:/bucket/run
