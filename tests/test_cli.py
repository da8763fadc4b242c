"""The dipjax command: a real run, the issue's DIP check, batches, and one-line errors for bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dipjax.cli import main

SMALL = ["--size", "64", "--width", "8", "--steps", "15", "--no-progress"]


def _fails(capsys, argv, expected):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("dipjax: error:"), err
    assert expected in err, err
    return err


def test_reconstruct_batch_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reconstruct", "--task", "inpaint", "--image", "camera", "--image", "coins", "--seed", "3",
                 "--out", str(out)] + SMALL) == 0
    for name in ("camera", "coins"):
        folder = out / name
        assert {p.name for p in folder.iterdir()} == {"estimate.png", "degraded.png", "curve.png", "metrics.json",
                                                      "history.json"}
        m = json.loads((folder / "metrics.json").read_text())
        h = json.loads((folder / "history.json").read_text())
        assert {"loss", "psnr", "ssim"} <= set(h) and all(len(v) == 15 for v in h.values())
        assert max(h["psnr"]) == pytest.approx(m["psnr_peak_oracle"], abs=1e-4)  # the curve names the same peak
        assert h["psnr"][-1] == pytest.approx(m["psnr_final"], abs=1e-3)
        for key in ("psnr_input", "psnr_final", "ssim_final", "psnr_peak_oracle", "iter_peak_oracle", "steps",
                    "seconds", "compile_seconds", "method", "task", "seed"):
            assert key in m
        assert m["steps"] == 15 and m["task"] == "inpaint" and m["seed"] == 3 and m["batch_size"] == 2
        assert m["psnr_peak_oracle"] >= m["psnr_final"] - 1e-4
    assert "results in" in capsys.readouterr().out


@pytest.mark.parametrize("task", ["sr", "deblur", "cs"])
def test_other_tasks_run(tmp_path, task):
    assert main(["reconstruct", "--task", task, "--image", "moon", "--out", str(tmp_path / task), "--no-ssim"]
                + SMALL) == 0
    m = json.loads((tmp_path / task / "moon" / "metrics.json").read_text())
    assert np.isfinite(m["psnr_final"]) and m["task"] == task and -1 <= m["ssim_final"] <= 1
    h = json.loads((tmp_path / task / "moon" / "history.json").read_text())
    assert "ssim" not in h and len(h["psnr"]) == 15  # --no-ssim: no per-step SSIM, the final one is still there


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path, capsys):
    out = str(tmp_path / "out")
    base = ["reconstruct", "--task", "denoise", "--out", out] + SMALL
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    cases = [
        (base + ["--image", str(tmp_path / "missing.png")], "no bundled image or file"),
        (base + ["--image", str(broken)], "cannot read image file"),
        (base + ["--image", "not-an-image-name"], "no bundled image or file"),
        (["reconstruct", "--task", "dance", "--image", "camera", "--out", out] + SMALL, "invalid choice: 'dance'"),
        (base + ["--image", "camera", "--method", "nope"], "invalid choice: 'nope'"),
        (base + ["--image", "camera", "--size", "48"], "--size 48 does not fit"),
        (base + ["--image", "camera", "--sigma", "-5"], "--sigma must be non-negative"),
        (base + ["--image", "camera", "--steps", "0"], "expected a positive integer"),
        (base + ["--image", "camera", "--steps", "-3"], "expected a positive integer"),
        (["reconstruct", "--task", "cs", "--ratio", "1", "--image", "astronaut", "--size", "256", "--out", out],
         "too large"),
    ]
    for argv, expected in cases:
        _fails(capsys, argv, expected)
        assert not os.path.exists(out), argv
    os.makedirs(out)
    (tmp_path / "out" / "keep.txt").write_text("user data")
    _fails(capsys, base + ["--image", "camera"], "not empty; pass --overwrite")
    assert os.listdir(out) == ["keep.txt"]


def test_console_script_exit_code_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dipjax.cli", "reconstruct", "--task", "denoise", "--image",
                           str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_issue_check_dip_overfits_camera_64(tmp_path):
    """The issue's acceptance run: peak ≥ input + 4 dB, and the final iterate visibly below the peak."""
    out = tmp_path / "dip"
    assert main(["reconstruct", "--task", "denoise", "--image", "camera", "--sigma", "25", "--method", "dip",
                 "--size", "64", "--width", "32", "--steps", "3000", "--out", str(out), "--no-progress"]) == 0
    m = json.loads((out / "camera" / "metrics.json").read_text())
    assert m["psnr_peak_oracle"] >= m["psnr_input"] + 4.0
    assert m["psnr_final"] <= m["psnr_peak_oracle"] - 1.5


def test_every_method_name_runs_from_the_cli_and_oes_saves_a_transferable_mask(tmp_path, capsys):
    base = ["reconstruct", "--task", "denoise", "--image", "camera", "--size", "64", "--steps", "3",
            "--no-progress"]
    for method, extra in (("deep_decoder", ["--width", "8"]), ("drp", ["--width", "8"])):
        out = tmp_path / method
        assert main(base + ["--method", method, "--out", str(out)] + extra) == 0
        m = json.loads((out / "camera" / "metrics.json").read_text())
        assert m["method"] == method and m["steps"] == 3 and m["config"]["name"] == method
    out = tmp_path / "oes"
    assert main(base + ["--method", "oes", "--scales", "2", "--oes-mask-steps", "2", "--out", str(out)]) == 0
    mask_file = out / "camera" / "oes_mask.npz"
    assert mask_file.exists()
    m = json.loads((out / "camera" / "metrics.json").read_text())
    assert m["oes_mask_steps"] == 2 and m["steps"] == 3
    out2 = tmp_path / "oes_transfer"
    assert main(["reconstruct", "--task", "denoise", "--image", "coins", "--size", "64", "--steps", "2",
                 "--no-progress", "--method", "oes", "--scales", "2", "--oes-mask", str(mask_file),
                 "--out", str(out2)]) == 0
    capsys.readouterr()
    _fails(capsys, base + ["--method", "drp", "--ema", "0.9", "--out", str(tmp_path / "x")], "--ema does not apply")
    _fails(capsys, base + ["--method", "oes", "--oes-mask", str(tmp_path / "none.npz"), "--out",
                           str(tmp_path / "y")], "cannot read an OES mask")
