"""The dipjax command: a real run, the issue's DIP check, batches, and one-line errors for bad input."""

import json
import os
import subprocess
import sys

import imageio.v3
import numpy as np
import pytest

from dipjax.cli import main
from dipjax.methods import METHODS

SMALL = ["--size", "32", "--width", "4", "--scales", "1", "--steps", "15", "--no-progress"]


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
        assert {p.name for p in folder.iterdir()} == {"estimate.png", "estimate.npy", "degraded.png", "curve.png",
                                                      "metrics.json", "history.json"}
        # the full-precision estimate is the picture's image: the 8-bit PNG rounds its clipped values
        estimate = np.load(folder / "estimate.npy")
        picture = imageio.v3.imread(folder / "estimate.png").astype(np.float64) / 255
        assert estimate.dtype == np.float32 and estimate.shape == picture.shape + (1,)
        assert np.abs(np.clip(estimate[..., 0], 0, 1) - picture).max() <= 0.5 / 255 + 1e-6
        assert np.abs(estimate * 255 - np.round(estimate * 255)).max() > 0.1  # not the 8-bit values again
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
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 64, 3), np.float32))
    cases = [
        (base + ["--image", str(tmp_path / "missing.png")], "no bundled image or file"),
        (base + ["--image", str(broken)], "cannot read image file"),
        (base + ["--image", "not-an-image-name"], "no bundled image or file"),
        (["reconstruct", "--task", "dance", "--image", "camera", "--out", out] + SMALL, "invalid choice: 'dance'"),
        (base + ["--image", "camera", "--method", "nope"], "invalid choice: 'nope'"),
        (base + ["--image", "camera", "--size", "31"], "--size 31 does not fit"),
        (base + ["--image", "camera", "--sigma", "-5"], "--sigma must be non-negative"),
        (base + ["--image", "camera", "--sigma", "nan"], "--sigma must be a finite number"),
        (base + ["--image", "camera", "--factor", "8"], "--factor does not apply to task denoise"),
        (base + ["--image", "camera", "--lam", "2"], "--lam does not apply to dip"),
        (base + ["--image", "camera", "--steps", "0"], "expected a positive integer"),
        (base + ["--image", "camera", "--steps", "-3"], "expected a positive integer"),
        (["reconstruct", "--task", "cs", "--ratio", "1", "--image", "astronaut", "--size", "256", "--out", out],
         "too large"),
        (base + ["--image", "camera", "--size", "8"], "--size must be at least 11 (SSIM's window)"),
        (base + ["--image", str(empty)], "non-empty"),
        (base + ["--image", "camera", "--seed", str(2**63)], "--seed must be an integer from 0 to 2^63 - 1"),
        (base + ["--image", "camera", "--image", "astronaut"], "mixes grayscale (camera) and colour"),
        (base + ["--image", "camera", "--blur-std", "nan"], "--blur-std does not apply to task denoise"),
        (base[:2] + ["deblur"] + base[3:] + ["--image", "camera", "--blur-std", "nan"],
         "--blur-std must be a finite number"),
        (base + ["--image", "camera", "--lr", "inf"], "--lr must be a finite number"),
        (base + ["--image", "camera", "--out", ""], "--out must name a folder"),
    ]
    for argv, expected in cases:
        _fails(capsys, argv, expected)
        assert not os.path.exists(out), argv
    os.makedirs(out)
    (tmp_path / "out" / "keep.txt").write_text("user data")
    _fails(capsys, base + ["--image", "camera"], "not empty; pass --overwrite")
    assert os.listdir(out) == ["keep.txt"]


def test_an_image_given_twice_gets_the_same_degradation(tmp_path):
    out = tmp_path / "twice"
    assert main(["reconstruct", "--task", "inpaint", "--image", "camera", "--image", "camera", "--out", str(out)]
                + SMALL[:-3] + ["--steps", "2", "--no-progress"]) == 0
    first, second = (json.loads((out / d / "metrics.json").read_text()) for d in ("camera", "camera-1"))
    assert first["psnr_input"] == second["psnr_input"]
    assert (out / "camera" / "degraded.png").read_bytes() == (out / "camera-1" / "degraded.png").read_bytes()


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


def _tiny_network_args(name):
    """--width/--scales that make the method's network tiny (one scale; ConvDecoder needs two layers), for the
    options its network factory takes, and a tiny mask budget for OES."""
    import inspect

    from dipjax.methods import get_method

    params = inspect.signature(get_method(name).network).parameters
    scales = "2" if name == "conv_decoder" else "1"
    return (["--width", "4"] if "width" in params else []) + (["--scales", scales] if "scales" in params else []) + \
        (["--oes-mask-steps", "2"] if name == "oes" else [])


#: Methods that refuse a nonlinear forward model, with the reason their one-line message must give (none today:
#: every method fits A(f(z)) ≈ y by autodiff, and those that start from init_image(y) get one from every operator).
REFUSES_NONLINEAR: dict[str, str] = {}


#: Methods run on both nonlinear tasks: DIP (the task's CLI path) and those that start from the operator's
#: ``init_image(y)``, which differs between the two. The others run on phase retrieval only (no adjoint, measurements
#: that are not image-shaped: the harder case; nonlinear deblurring adds nothing else for them).
BOTH_NONLINEAR = ("dip", "sg_dip", "aseq_dip", "reference_dip", "deepred")


@pytest.mark.parametrize("name", list(METHODS))
def test_every_registered_method_runs_from_the_cli_on_the_nonlinear_tasks(tmp_path, capsys, name):
    """Enumerates the registry, so a new method cannot skip this: 5 steps on a 16² gray image with tiny networks, on
    phase retrieval and (methods in BOTH_NONLINEAR) nonlinear deblurring — or, if listed in REFUSES_NONLINEAR, exit 2
    with one line saying why the method does not apply. (The linear tasks run every method elsewhere: this file's
    medical and batch tests, test_methods.py.)"""
    for task in ("pr", "nonlinear_deblur") if name in BOTH_NONLINEAR else ("pr",):
        out = tmp_path / task
        code = main(["reconstruct", "--task", task, "--image", "camera", "--size", "16", "--gray", "--steps", "5",
                     "--no-progress", "--no-ssim", "--method", name, "--out", str(out)] + _tiny_network_args(name))
        if name in REFUSES_NONLINEAR:
            err = capsys.readouterr().err.strip()
            assert code == 2 and err.count("\n") == 0 and REFUSES_NONLINEAR[name] in err, (task, err)
            continue
        assert code == 0, (task, capsys.readouterr().err)
        m = json.loads((out / "camera" / "metrics.json").read_text())
        assert m["method"] == name and m["steps"] == 5 and m["config"]["task"]["task"] == task
        assert np.isfinite(m["psnr_final"])
        if task == "pr":
            assert np.isfinite(m["psnr_aligned_final"])
        if name == "oes":
            assert (out / "camera" / "oes_mask.npz").exists()


def test_oes_mask_transfers_from_the_cli(tmp_path, capsys):
    base = ["reconstruct", "--task", "denoise", "--size", "32", "--gray", "--steps", "2", "--no-progress",
            "--no-ssim", "--method", "oes", "--scales", "1"]
    assert main(base + ["--image", "camera", "--oes-mask-steps", "3", "--out", str(tmp_path / "a")]) == 0
    m = json.loads((tmp_path / "a" / "camera" / "metrics.json").read_text())
    assert m["mask_steps"] == 3 and m["config"]["hyperparameters"]["mask_steps"] == 3
    mask = tmp_path / "a" / "camera" / "oes_mask.npz"
    assert main(base + ["--image", "coins", "--oes-mask", str(mask), "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "coins" / "metrics.json").read_text())["mask_steps"] == 0
    capsys.readouterr()
    _fails(capsys, base + ["--image", "camera", "--oes-mask", str(tmp_path / "none.npz"), "--out",
                           str(tmp_path / "c")], "cannot read an OES mask")
    _fails(capsys, base[:-4] + ["--method", "drp", "--image", "camera", "--ema", "0.9", "--out", str(tmp_path / "d")],
           "--ema does not apply to drp")


@pytest.mark.parametrize("argv, steps, hyper", [
    (["--task", "sr", "--factor", "8", "--method", "dip"], 4000, {"input_noise_std": 0.05}),
    (["--task", "denoise", "--sigma", "50", "--method", "dip"], 3000, {"input_noise_std": 1 / 20}),
    (["--task", "inpaint", "--method", "aseq_dip"], 400, {"lr": 3e-4, "z_update": "recompute"}),
    (["--task", "denoise", "--method", "aseq_dip", "--lam", "2", "--steps", "10"], 10, {"lam": 2.0}),
])
def test_dry_run_prints_the_resolved_configuration_and_writes_nothing(tmp_path, capsys, argv, steps, hyper):
    out = tmp_path / "never"
    assert main(["reconstruct", "--image", "camera", "--size", "64", "--dry-run", "--out", str(out)] + argv) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["steps"] == steps
    for k, v in hyper.items():
        assert resolved["hyperparameters"][k] == pytest.approx(v)
    assert resolved["task"]["task"] == argv[1] and resolved["preset_sources"]
    assert not out.exists()


def test_metrics_record_the_resolved_configuration(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["reconstruct", "--task", "deblur", "--kernel", "uniform", "--kernel-size", "5", "--image", "moon",
            "--size", "32", "--gray", "--width", "4", "--scales", "2", "--steps", "3", "--no-progress",
            "--no-ssim", "--lr", "0.02"]
    assert main(argv + ["--dry-run", "--out", str(out)]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert main(argv + ["--out", str(out)]) == 0
    config = json.loads((out / "moon" / "metrics.json").read_text())["config"]
    assert config["task"] == {"task": "deblur", "sigma": 25.0, "noise_channels": "independent", "kernel": "uniform",
                              "kernel_size": 5, "blur_std": 1.6, "boundary": "circular"}
    assert config["hyperparameters"]["lr"] == 0.02 and config["user_settings"] == {"lr": 0.02}
    assert {k: v for k, v in config.items() if k != "command"} == {k: v for k, v in dry.items() if k != "command"}


def test_tables_subcommands(capsys):
    from dipjax.methods.registry import markdown_table as method_table
    from dipjax.tasks import markdown_table

    assert main(["tasks"]) == 0 and capsys.readouterr().out.strip() == markdown_table()
    assert main(["methods"]) == 0 and capsys.readouterr().out.strip() == method_table()
