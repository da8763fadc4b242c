"""Every notebook's code cells run top to bottom (executed in-process; no Jupyter kernel needed). Notebooks check
their own results with ``assert`` cells; the quickstart's run length is checked here too."""

import json
import pathlib

import jax
import matplotlib
import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path):
    matplotlib.use("Agg", force=True)
    cells = json.loads(path.read_text())["cells"]
    namespace = {}
    x64 = jax.config.jax_enable_x64
    try:
        for cell in cells:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)
    finally:
        jax.config.update("jax_enable_x64", x64)  # the theory notebook switches float64 on
    if path.name == "quickstart.ipynb":
        assert namespace["result"].history["psnr"].shape[-1] == namespace["STEPS"]
