"""Runs examples/quickstart.ipynb end to end in a real Jupyter kernel."""

from __future__ import annotations

import pathlib

import nbformat
from nbclient import NotebookClient


def test_quickstart_notebook_runs(tmp_path) -> None:
    root = pathlib.Path(__file__).resolve().parents[2]
    nb = nbformat.read(root / "examples" / "quickstart.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError if any cell fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # The chart was drawn.
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "incidence_by_city.png").exists()
