"""The Colab notebook's Python runs: its cells executed in order at toy size on CPU."""

import json
import os

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "notebooks", "train_on_tpu.ipynb")


def _python_lines(cell):
  # Shell (`!`) and magic (`%`) lines are Colab's, not Python: they are not run here.
  return "".join(line for line in cell["source"] if not line.lstrip().startswith(("!", "%")))


def test_notebook_cells_run_in_order(synth_data_dir, tmp_path, monkeypatch):
  with open(NOTEBOOK) as f:
    cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
  namespace = {}
  exec(_python_lines(cells[0]), namespace)  # the parameters cell
  namespace.update(REPO=os.path.dirname(NOTEBOOK) + "/..", WORKDIR=str(tmp_path / "nb"),
                   SMOKE_TEST=True)
  monkeypatch.setenv("FASHION_JAX_DATA_DIR", synth_data_dir)
  for cell in cells[1:]:
    source = _python_lines(cell)
    if "display(Image(" in source:
      assert os.path.exists(str(tmp_path / "nb" / "predictions_test.png"))
      continue  # IPython is not a test dependency
    exec(source, namespace)
  assert namespace["results"], "the notebook's training cell returned no results"
