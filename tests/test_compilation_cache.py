"""The persistent compilation cache: a second identical CLI run loads its step program from disk."""

import json
import os
import subprocess
import sys

from dipjax.compilation_cache import cache_dir


def _run(out, env):
    cmd = [sys.executable, "-m", "dipjax.cli", "reconstruct", "--task", "denoise", "--image", "camera", "--size", "32",
           "--width", "8", "--scales", "1", "--steps", "3", "--no-progress", "--no-ssim", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(out, "camera", "metrics.json")) as f:
        return json.load(f)


def test_a_second_identical_run_does_not_compile_again(tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, DIPJAX_COMPILATION_CACHE=str(cache), JAX_PLATFORMS="cpu")
    first = _run(tmp_path / "a", env)
    assert any(cache.iterdir()), "the first run wrote nothing into the cache"
    second = _run(tmp_path / "b", env)
    assert first["compile_seconds"] > 0.3  # it did compile (a cold 32² step takes seconds)
    assert second["compile_seconds"] <= 1.0, second["compile_seconds"]
    assert second["psnr_final"] == first["psnr_final"]  # the cached program computes the same numbers


def test_the_environment_chooses_or_turns_off_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("DIPJAX_COMPILATION_CACHE", "off")
    assert cache_dir() is None
    monkeypatch.setenv("DIPJAX_COMPILATION_CACHE", str(tmp_path))
    assert cache_dir() == str(tmp_path)
    monkeypatch.delenv("DIPJAX_COMPILATION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == os.path.join(str(tmp_path), "dipjax", "jax")
