"""The quickstart notebook runs top to bottom on CPU (with tiny parameters)."""

import nbformat
import pytest

from conftest import REPO

nbclient = pytest.importorskip("nbclient")


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path):
  notebook = nbformat.read(REPO / "colabs" / "quickstart.ipynb", as_version=4)
  parameters = [
      c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])
  ]
  assert len(parameters) == 1
  parameters[0].source = (
      f"DATASET = 'digits'\nNUM_STEPS = 40\nPROBE_EPOCHS = 3\n"
      f"WORKDIR = '{tmp_path / 'run'}'\nREPO_URL = ''"
  )
  client = nbclient.NotebookClient(
      notebook,
      timeout=600,
      kernel_name="python3",
      resources={"metadata": {"path": str(tmp_path)}},
  )
  client.execute()
  outputs = [
      o
      for cell in notebook.cells
      if cell.cell_type == "code"
      for o in cell.get("outputs", [])
  ]
  assert not [o for o in outputs if o.output_type == "error"]
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(images) == 2  # reconstructions/samples, latent plot
  printed = "".join(
      o.get("text", "") for o in outputs if o.output_type == "stream"
  )
  assert "mlp_probe_acc" in printed and "knn_acc" in printed
  assert "backend cpu" in printed and "device(s)" in printed  # runtime check


def test_install_cell_explains_what_to_do_without_a_source(tmp_path):
  """On a fresh runtime with neither REPO_URL nor an upload, the install cell
  stops with instructions instead of an obscure failure."""
  notebook = nbformat.read(REPO / "colabs" / "quickstart.ipynb", as_version=4)
  install = [c for c in notebook.cells if "def install" in c.source][0]
  namespace = {"REPO_URL": ""}
  source = install.source.replace(
      'importlib.util.find_spec("simvae_jax") is None', "True"
  )
  with pytest.raises(
      RuntimeError, match="set REPO_URL .* or upload the repository"
  ):
    exec(compile(source, "install", "exec"), namespace)
  badge = notebook.cells[0].source
  assert (
      "colab.research.google.com/github/" in badge
      and "colab-badge.svg" in badge
  )
