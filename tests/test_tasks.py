"""The task registry: validation with one-line messages, no fallback for unknown names, the tables the README shows,
and a toy task added in one module (tests/toy_task.py) that the CLI, the presets and the operator checks pick up."""

import importlib
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax.cli import main
from dipjax.methods import default_steps
from dipjax.methods.registry import markdown_table as method_table
from dipjax.tasks import TASKS, OptionError, get_task, markdown_table, task_config

README = pathlib.Path(__file__).parent.parent / "README.md"


def test_unknown_task_and_foreign_options_are_errors():
    with pytest.raises(ValueError, match="unknown task 'cs2'"):
        get_task("cs2")
    with pytest.raises(OptionError, match="factor does not apply to task 'denoise'"):
        task_config("denoise", factor=8)


@pytest.mark.parametrize("name, options, message", [
    ("inpaint", {"keep": 0.0}, "keep must be in (0, 1]"),
    ("inpaint", {"keep": float("nan")}, "keep must be a finite number"),
    ("inpaint", {"mask": "circle"}, "mask must be one of random, box, text"),
    ("sr", {"factor": 3}, "factor must be one of 2, 4, 8"),
    ("sr", {"factor": 4.0}, "factor must be a int"),
    ("deblur", {"blur_std": -1.0}, "blur_std must be positive"),
    ("denoise", {"sigma": float("inf")}, "sigma must be a finite number"),
    ("denoise", {"sigma": -5.0}, "sigma must be non-negative"),
    ("cs", {"ratio": 1.5}, "ratio must be in (0, 1]"),
])
def test_options_validate_themselves(name, options, message):
    with pytest.raises(OptionError) as err:
        task_config(name, **options)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_integers_are_accepted_for_float_options():
    assert task_config("denoise", sigma=50).sigma == 50.0


def test_readme_tables_are_the_registry_tables():
    """The README's task and method tables are generated (`dipjax tasks`, `dipjax methods`), not hand-kept."""
    text = README.read_text()
    assert markdown_table() in text
    assert method_table() in text


@pytest.fixture
def toy_task():
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    module = importlib.import_module("toy_task")
    TASKS.setdefault("flip", module.FlipConfig)  # registered on first import; again after a previous test's cleanup
    yield module
    TASKS.pop("flip")
    sys.path.pop(0)


def test_a_task_added_in_one_module_reaches_the_cli_presets_and_operator_checks(toy_task, tmp_path, capsys, x64):
    config = task_config("flip", direction="vertical", gain=0.8)
    op = config.build_operator(jax.random.key(0), (8, 6, 2))
    x, y = (jax.random.normal(k, (8, 6, 2), jnp.float64) for k in jax.random.split(jax.random.key(1)))
    assert abs(jnp.vdot(op(x), y) - jnp.vdot(x, op.adjoint(y))) < 1e-12
    np.testing.assert_allclose(op(x), 0.8 * np.asarray(x)[::-1], rtol=1e-12)
    np.testing.assert_allclose(op.init_image(op(x)), x, rtol=1e-12)
    assert default_steps("dip", config) == 3000  # the presets' rows for every task apply
    assert "| `flip` | y = g · mirror(x) + n (a toy task) |" in markdown_table()
    assert main(["reconstruct", "--task", "flip", "--direction", "vertical", "--gain", "0.8", "--image", "camera",
                 "--size", "64", "--dry-run", "--out", str(tmp_path / "x")]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["task"] == {"task": "flip", "sigma": 25.0, "noise_channels": "independent",
                                "direction": "vertical", "gain": 0.8}
    assert main(["reconstruct", "--task", "flip", "--gain", "2", "--image", "camera", "--size", "32",
                 "--out", str(tmp_path / "y")]) == 2
    assert "--gain must be in (0, 1], got 2.0" in capsys.readouterr().err
    assert main(["reconstruct", "--task", "denoise", "--gain", "0.5", "--image", "camera", "--size", "32",
                 "--out", str(tmp_path / "z")]) == 2
    assert "--gain does not apply to task denoise" in capsys.readouterr().err
