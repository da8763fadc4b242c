"""The memory check: XLA's account of a program's buffers against the memory available, before a run computes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax.data import load_image
from dipjax.engine import reconstruct
from dipjax.memory import ENV, RunTooLarge, available_bytes, parse_bytes, program_bytes
from dipjax.methods import DIP
from dipjax.networks import skip_net
from dipjax.operators import Denoising, gaussian_noise
from dipjax.problem import make_problem, stack_problems


def test_program_bytes_count_the_buffers_a_matrix_product_needs():
    """x (n×k) @ w (k×m) in float32: both arguments and the n×m output are held at once (4·(nk + km + nm) bytes),
    and XLA adds no temporary of note for one dot."""
    n, k, m = 512, 256, 384
    f = jax.jit(lambda x, w: x @ w).lower(jax.ShapeDtypeStruct((n, k), jnp.float32),
                                          jax.ShapeDtypeStruct((k, m), jnp.float32)).compile()
    exact = 4 * (n * k + k * m + n * m)
    assert exact <= program_bytes(f) <= 1.1 * exact


def test_sizes_parse_and_the_environment_sets_or_turns_off_the_limit(monkeypatch):
    assert parse_bytes("16G") == 16 * 2 ** 30 and parse_bytes("1.5 GiB") == 3 * 2 ** 29 and parse_bytes("1000") == 1000
    with pytest.raises(ValueError, match="DIPJAX_MEMORY_LIMIT"):
        parse_bytes("lots")
    cpu = jax.devices("cpu")[0]
    monkeypatch.setenv(ENV, "2M")
    assert available_bytes(cpu) == 2 * 2 ** 20
    monkeypatch.setenv(ENV, "off")
    assert available_bytes(cpu) is None
    monkeypatch.delenv(ENV)
    free = available_bytes(cpu)
    assert free is not None and 0 < free < 2 ** 50  # /proc/meminfo (or the cgroup) on this Linux machine


def _problems(size, n):
    op = Denoising(in_shape=(size, size, 1))
    noise = lambda k, y: gaussian_noise(k, y, 0.1, (0, 1))  # noqa: E731
    return [make_problem(jax.random.key(i), op, load_image("camera", size, channels=1), noise) for i in range(n)]


def test_a_run_that_does_not_fit_is_refused_before_its_first_step(monkeypatch):
    """The estimate grows with the image (activations ∝ pixels) and with the images held by a sequential batch; a
    limit between the one-image and the four-image need lets the first run and refuses the second, naming both
    numbers."""
    from dipjax import engine

    method = DIP(network=skip_net(out_channels=1, width=4, scales=1))
    seen = []
    real = engine.check_fits
    monkeypatch.setattr(engine, "check_fits", lambda needed, device, what: seen.append(needed) or
                        real(needed, device, what))
    one = reconstruct(method, _problems(32, 1)[0], jax.random.key(0), 2, track_ssim=False)
    small_init, small_step = seen[:2]
    reconstruct(method, _problems(64, 1)[0], jax.random.key(0), 2, track_ssim=False)
    big_step = seen[3]
    assert 3 < big_step / small_step < 4.5  # 4× the pixels: activations dominate the step's buffers
    assert small_step > small_init
    monkeypatch.setenv(ENV, str(int(small_step * 1.2)))
    batch = stack_problems(_problems(32, 4))
    with pytest.raises(RunTooLarge, match=r"needs about .* MiB .* step program with 4 images held.* is free"):
        reconstruct(method, batch, jax.random.key(0), 2, track_ssim=False, batch="sequential")
    assert np.isfinite(one.history["loss"]).all()


@pytest.mark.parametrize("command", ["reconstruct", "dataset"])
def test_the_cli_refuses_a_run_too_large_with_one_line_and_no_files(tmp_path, monkeypatch, capsys, command):
    from dipjax.cli import main

    out = tmp_path / "run"
    monkeypatch.setenv(ENV, "100K")
    images = ["--image", "camera"] if command == "reconstruct" else ["--inputs", "camera", "--inputs", "moon"]
    code = main([command, "--task", "denoise", *images, "--size", "32", "--width", "4", "--scales", "1", "--steps",
                 "3", "--no-progress", "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "not enough memory" in lines[0] and "0.1 MiB is free" in lines[0], lines
    assert "MiB by XLA's account of its init program" in lines[0]
    assert not out.exists(), list(out.rglob("*"))
