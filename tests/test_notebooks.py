"""Every notebook's code cells run top to bottom, in a fresh Python process as a user's kernel would (nothing the test
session changed, such as the float64 flag, leaks in or out). Notebooks check their own results with ``assert``
cells; the quickstart's run length is checked here too."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

CHECKS = {"quickstart.ipynb": 'assert result.history["psnr"].shape[-1] == STEPS, result.history["psnr"].shape'}


#: Notebooks run only with ``-m slow``: the theory notebook takes ~45 s on 2 CPU cores and the medical one ~2 min
#: (mostly compiling); their functions are tested in tests/test_theory_*.py and tests/test_mri_ct.py.
SLOW = {"theory.ipynb", "medical.ipynb"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p for p in NOTEBOOKS],
                         ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    cells = json.loads(path.read_text())["cells"]
    code = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    script = tmp_path / f"{path.stem}.py"
    script.write_text("import matplotlib\nmatplotlib.use('Agg')\n\n" + code + "\n\n" + CHECKS.get(path.name, "") + "\n")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(script)], cwd=path.parent, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
