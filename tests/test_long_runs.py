"""Runs that go wrong: divergence, interruption, two runs on one folder, --overwrite, unusable --out, and files that
are never left half-written."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax.cli import LOCK, MANIFEST, main
from dipjax.files import atomic_path
from dipjax.monitors import FiniteGuard, StepView

TINY = ["--size", "32", "--width", "4", "--scales", "1", "--no-ssim"]


def _strict(path):
    """Parse JSON as a strict parser does: NaN and Infinity are not JSON."""
    def refuse(token):
        raise ValueError(f"{path} holds the non-JSON token {token}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_finite_guard_keeps_the_last_finite_estimate():
    guard = FiniteGuard()
    view = lambda t, x: StepView(jnp.int32(t), x, x, None)  # noqa: E731
    state = guard.init(view(-1, jnp.zeros(3)))
    flags = []
    for t, x in enumerate([jnp.ones(3), 2 * jnp.ones(3), jnp.array([1.0, jnp.nan, 0.0]), 4 * jnp.ones(3)]):
        state, m = jax.jit(guard.update)(state, view(t, x))
        flags.append(float(m["finite"]))
    s = guard.summary(state)
    assert flags == [1, 1, 0, 0]  # stays 0 once it dropped, even if a later estimate is finite again
    assert int(s["iter_diverged"]) == 3 and np.all(np.asarray(s["x_last_finite"]) == 2)


def test_a_diverging_run_stops_keeps_the_last_finite_iterate_and_exits_3(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["reconstruct", "--task", "denoise", "--image", "camera", "--method", "dop", "--lr", "1e6",
                 "--steps", "200", "--no-progress", "--out", str(out)] + TINY)
    err = capsys.readouterr().err.strip()
    assert code == 3, err
    assert len(err.splitlines()) == 1 and "non-finite" in err and "--lr" in err
    m = _strict(out / "camera" / "metrics.json")
    h = _strict(out / "camera" / "history.json")
    k = m["diverged_at"]
    assert k is not None and 1 <= k and m["estimate_iteration"] == k - 1
    assert m["steps"] < 200  # the run ended at the first sync after every image diverged
    assert np.isfinite(m["psnr_final"]) and m["complete"] is True
    assert h["finite"][: k - 1] == [1.0] * (k - 1) and h["finite"][k - 1] == 0.0
    if k > 1:  # the reported estimate is iteration k − 1: its PSNR is the curve's value there
        assert m["psnr_final"] == pytest.approx(h["psnr"][k - 2], abs=1e-3)


def _wait_for(proc, marker: bytes, timeout: float = 240.0) -> bytes:
    """Read ``proc``'s stderr until ``marker`` appears (tqdm's bar: the run loop has started)."""
    seen, end = b"", time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < end and proc.poll() is None, seen.decode(errors="replace")
        seen += os.read(proc.stderr.fileno(), 256)
    return seen


def test_sigint_ends_the_run_cleanly_and_a_second_run_on_the_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dipjax.cli", "reconstruct", "--task", "denoise", "--image", "camera",
           "--steps", "100000", "--out", str(out)] + TINY
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        _wait_for(proc, b"%|")
        second = subprocess.run(cmd[:-len(TINY)] + ["--overwrite"] + TINY, capture_output=True, text=True, env=env,
                                timeout=120)
        assert second.returncode == 2 and "another dipjax run is writing into" in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    last = err.decode().replace("\r", "\n").strip().splitlines()[-1]
    assert proc.returncode == 130, err.decode()
    assert last.startswith("dipjax: interrupted at iteration") and "Traceback" not in err.decode()
    m = _strict(out / "camera" / "metrics.json")
    h = _strict(out / "camera" / "history.json")
    assert m["complete"] is False and 0 < m["steps"] < 100000 and len(h["loss"]) == m["steps"]
    assert sorted(_strict(out / MANIFEST)["files"])[0].startswith("camera" + os.sep)


def test_overwrite_removes_the_previous_runs_files_and_only_those(tmp_path):
    out = tmp_path / "run"
    base = ["reconstruct", "--task", "denoise", "--steps", "4", "--no-progress", "--out", str(out)] + TINY
    assert main(base + ["--image", "camera", "--image", "moon"]) == 0
    assert (out / "moon" / "estimate.png").exists()
    (out / "notes.txt").write_text("mine")
    (out / "camera" / "mine.txt").write_text("mine too")
    assert main(base + ["--image", "camera", "--overwrite"]) == 0  # the same program: no compilation
    assert not (out / "moon").exists()
    assert (out / "notes.txt").exists() and (out / "camera" / "mine.txt").exists()
    assert (out / "camera" / "estimate.png").exists() and (out / LOCK).exists()
    assert not [p for p in out.rglob("*.tmp")]  # no temporary file left behind


@pytest.mark.parametrize("kind", ["empty", "dangling", "file"])
def test_an_unusable_out_is_refused_before_anything_runs(tmp_path, capsys, kind):
    if kind == "empty":
        out, expected = "", "--out must name a folder"
    elif kind == "dangling":
        out, expected = str(tmp_path / "link"), "does not exist"
        os.symlink(tmp_path / "nowhere", out)
    else:
        out, expected = str(tmp_path / "file"), "is not a folder"
        open(out, "w").close()
    code = main(["reconstruct", "--task", "denoise", "--image", "camera", "--steps", "3", "--no-progress",
                 "--out", out] + TINY)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert sorted(os.listdir(tmp_path)) == ({"empty": [], "dangling": ["link"], "file": ["file"]}[kind])


def test_an_interrupted_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(str(path)) as tmp, open(tmp, "w") as f:
            f.write("half of the new")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["metrics.json"]
    with atomic_path(str(path)) as tmp, open(tmp, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["metrics.json"]


def test_a_resumed_run_ends_bit_for_bit_as_the_uninterrupted_one(tmp_path):
    from dipjax.engine import reconstruct
    from dipjax.methods import DIP
    from dipjax.networks import skip_net
    from dipjax.operators import Denoising, gaussian_noise
    from dipjax.problem import make_problem, stack_problems
    from dipjax.stopping import WindowedMovingVariance

    op = Denoising(in_shape=(32, 32, 1))
    x = jax.random.uniform(jax.random.key(1), (32, 32, 1))
    noise = lambda k, y: gaussian_noise(k, y, 0.1, (0, 1))  # noqa: E731
    batch = stack_problems([make_problem(jax.random.key(i), op, x, noise) for i in range(2)])
    method = DIP(network=skip_net(out_channels=1, width=4, scales=1))
    path = str(tmp_path / "ckpt.npz")
    run = lambda **kw: reconstruct(method, batch, jax.random.key(0), 60, sync_every=7,  # noqa: E731
                                   stopper=WindowedMovingVariance(window=5, patience=10), **kw)
    full = run(checkpoint=path, checkpoint_every=20)  # leaves the checkpoint of step 42 (the first sync after 40)
    resumed = run(checkpoint=path, resume=True)
    assert resumed.steps == full.steps == 60
    np.testing.assert_array_equal(resumed.x_final, full.x_final)
    for k in full.history:
        np.testing.assert_array_equal(resumed.history[k], full.history[k])
    for k in full.summary:
        np.testing.assert_array_equal(resumed.summary[k], full.summary[k])
    with pytest.raises(ValueError, match="run of 60 steps, not 61"):
        reconstruct(method, batch, jax.random.key(0), 61, sync_every=7, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="different structure"):
        reconstruct(method, batch[0], jax.random.key(0), 60, sync_every=7, checkpoint=path, resume=True)


TIMING = {"seconds", "compile_seconds", "init_seconds", "seconds_per_step", "config"}


def _sigint_once_written(argv, path, timeout: float = 240.0) -> tuple[int, str]:
    """Run ``dipjax ARGV`` in a subprocess, send SIGINT as soon as ``path`` exists, and return its exit status and
    standard error."""
    proc = subprocess.Popen([sys.executable, "-m", "dipjax.cli"] + argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    try:
        end = time.monotonic() + timeout
        while not path.exists():
            assert proc.poll() is None and time.monotonic() < end, proc.communicate()[1].decode()
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, err.decode()


def test_kill_a_cli_run_after_its_first_checkpoint_and_resume_it(tmp_path):
    """The issue's check: SIGINT after the first checkpoint of a 300-step run at 32², `dipjax resume`, and the
    numbers and estimate.png of the uninterrupted run."""
    args = ["reconstruct", "--task", "denoise", "--image", "camera", "--size", "32", "--width", "8", "--scales", "1",
            "--steps", "300", "--seed", "5", "--no-ssim", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "stopped"
    code, err = _sigint_once_written(args + ["--checkpoint-every", "50", "--out", str(out)], out / "checkpoint.npz")
    assert code == 130, err
    stopped_at = _strict(out / "camera" / "metrics.json")["steps"]
    assert 50 <= stopped_at < 300
    assert main(["resume", str(out)]) == 0
    a, b = (_strict(tmp_path / d / "camera" / "metrics.json") for d in ("whole", "stopped"))
    assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}
    assert b["complete"] is True and b["steps"] == 300
    assert _strict(tmp_path / "whole" / "camera" / "history.json") == _strict(out / "camera" / "history.json")
    assert (tmp_path / "whole" / "camera" / "estimate.png").read_bytes() == (out / "camera" / "estimate.png").read_bytes()
    assert not (out / "checkpoint.npz").exists()  # complete: nothing left to resume


def test_oes_interrupted_in_its_mask_stage_resumes_bit_for_bit(tmp_path):
    """OES, a two-stage pipeline: SIGINT once the mask stage's first checkpoint exists ends the run at a step
    boundary with one line and exit 130, keeping the stage checkpoints (no results yet); `dipjax resume` finishes
    both stages with the numbers of the uninterrupted run and removes the stage files."""
    args = ["reconstruct", "--task", "denoise", "--image", "camera", "--size", "32", "--gray", "--method", "oes",
            "--scales", "1", "--oes-mask-steps", "600", "--steps", "100", "--seed", "2", "--no-ssim", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "stopped"
    code, err = _sigint_once_written(args + ["--checkpoint-every", "20", "--out", str(out)],
                                     out / "checkpoint-oes0-mask-run.npz")
    lines = err.strip().splitlines()
    assert code == 130 and len(lines) == 1 and "interrupted during oes mask" in lines[0], lines
    assert "dipjax resume" in lines[0] and not (out / "camera").exists()
    assert main(["resume", str(out)]) == 0
    a, b = (_strict(tmp_path / d / "camera" / "metrics.json") for d in ("whole", "stopped"))
    assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}
    assert _strict(tmp_path / "whole" / "camera" / "history.json") == _strict(out / "camera" / "history.json")
    assert (tmp_path / "whole" / "camera" / "oes_mask.npz").read_bytes() == \
        (out / "camera" / "oes_mask.npz").read_bytes()
    assert not list(out.glob("checkpoint*"))  # complete: the stage files are gone
