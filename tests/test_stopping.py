"""ES-WMV and ES-EMV stoppers: against offline/direct implementations, returning the iterate they name, in the
engine and from the CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax.monitors import StepView
from dipjax.stopping import ExponentialMovingVariance, WindowedMovingVariance, windowed_moving_variance


def _trajectory(steps=120, shape=(4, 4, 1)):
    """A converging-then-diverging sequence: variance falls, then rises (like DIP starting to fit noise)."""
    rng = np.random.default_rng(0)
    t = np.arange(steps)[:, None, None, None]
    scale = 0.05 * np.exp(-t / 15) + 0.002 * np.maximum(t - 60, 0) / 10
    return np.clip(0.5 + scale * rng.normal(size=(steps,) + shape), 0, 1).astype(np.float32)


def _view(x, t):
    """What the engine shows a stopper: the step's network output (and, irrelevant to stoppers, the estimate)."""
    return StepView(jnp.asarray(t, jnp.int32), jnp.asarray(x), jnp.zeros_like(jnp.asarray(x)), None)


def _run(stopper, frames):
    state = stopper.init(_view(frames[0], -1))
    update = jax.jit(lambda s, x, t: stopper.update(s, _view(x, t))[0])
    stopped_at = None
    for t, x in enumerate(frames[1:]):
        state = update(state, jnp.asarray(x), jnp.asarray(t, jnp.int32))
        if stopped_at is None and bool(stopper.stopped(state)):
            stopped_at = t
    return state, stopped_at


def test_wmv_matches_the_offline_variance_and_returns_the_iterate_it_names():
    frames = _trajectory()
    w, patience = 10, 25
    state, stopped_at = _run(WindowedMovingVariance(window=w, patience=patience), frames)
    offline = windowed_moving_variance(frames[1:], w)  # entry j: window ending at update index j + w - 1
    t_best = int(np.argmin(offline[: stopped_at - w + 2])) + w - 1
    assert int(state.t_stop) == t_best
    np.testing.assert_array_equal(state.x_stop, frames[1:][t_best])
    assert stopped_at == t_best + patience  # fires exactly `patience` updates after the last improvement
    # VAR of the last window (updates past the stop keep the buffer moving, the decision is frozen)
    np.testing.assert_allclose(state.variance, offline[-1], rtol=1e-4)


def test_wmv_subsampled_variance_is_an_estimate_of_the_full_one():
    frames = _trajectory(shape=(32, 32, 3))
    full, _ = _run(WindowedMovingVariance(window=10, patience=1000), frames)
    sub, _ = _run(WindowedMovingVariance(window=10, patience=1000, max_pixels=512), frames)
    assert sub.buffer.shape == (10, 512)
    assert abs(float(sub.variance) / float(full.variance) - 1) < 0.2
    assert sub.x_stop.shape == (32, 32, 3)


def test_emv_matches_a_direct_loop():
    frames = _trajectory()
    alpha, burn_in, patience = 0.1, 10, 20
    state, stopped_at = _run(ExponentialMovingVariance(alpha=alpha, patience=patience, burn_in=burn_in), frames)
    m, v = frames[0].astype(np.float64), 0.0
    best, t_best, ema_best, count, fired = np.inf, -1, None, 0, None
    for t, x in enumerate(frames[1:]):
        d = x - m
        m = np.clip(m + alpha * d, 0, 1)
        v = (1 - alpha) * (v + alpha * np.sum(d * d))
        if t + 1 >= burn_in and fired is None:
            if v < best:
                best, t_best, ema_best, count = v, t, m.copy(), 0
            else:
                count += 1
                if count >= patience:
                    fired = t
    assert int(state.t_stop) == t_best and stopped_at == fired
    np.testing.assert_allclose(state.x_stop, ema_best, atol=1e-6)


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError):
        WindowedMovingVariance(window=1)
    with pytest.raises(ValueError):
        ExponentialMovingVariance(returns="median")


def test_stopper_in_the_engine_returns_the_history_iterate():
    from dipjax.data import load_image
    from dipjax.engine import reconstruct
    from dipjax.methods import DIP
    from dipjax.metrics import psnr
    from dipjax.networks import skip_net
    from dipjax.operators import Denoising, gaussian_noise
    from dipjax.problem import make_problem

    x = load_image("camera", 32, channels=1)
    prob = make_problem(jax.random.key(0), Denoising(in_shape=x.shape), x,
                        lambda k, y: gaussian_noise(k, y, 25 / 255, (0, 1)))
    method = DIP(network=skip_net(out_channels=1, width=8, scales=2))
    r = reconstruct(method, prob, jax.random.key(1), 50,
                    stopper=ExponentialMovingVariance(burn_in=5, patience=10, returns="iterate"))
    assert 5 <= int(r.iter_stop) <= 50
    assert float(psnr(r.x_stop, x)) == pytest.approx(float(r.history["psnr"][int(r.iter_stop) - 1]), abs=1e-4)
    assert np.all(np.isfinite(r.history["emv_variance"]))  # the rule's statistic is recorded every step


def test_stoppers_watch_the_raw_network_output_not_the_average():
    """With an output EMA the estimate is an average; ES-DIP watches the network's own output (state.out)."""
    from dipjax.data import load_image
    from dipjax.engine import reconstruct
    from dipjax.methods import DIP
    from dipjax.networks import skip_net
    from dipjax.operators import Denoising, gaussian_noise
    from dipjax.problem import make_problem

    x = load_image("camera", 32, channels=1)
    prob = make_problem(jax.random.key(0), Denoising(in_shape=x.shape), x,
                        lambda k, y: gaussian_noise(k, y, 25 / 255, (0, 1)))
    net = skip_net(out_channels=1, width=4, scales=1)
    rule = WindowedMovingVariance(window=2, patience=100)
    averaged = reconstruct(DIP(network=net, output_ema=0.9), prob, jax.random.key(1), 8, stopper=rule)
    raw = reconstruct(DIP(network=net), prob, jax.random.key(1), 8, stopper=rule)
    assert not np.allclose(averaged.x_final, raw.x_final)  # the averaged estimate differs from the raw output ...
    np.testing.assert_allclose(averaged.history["wmv_variance"], raw.history["wmv_variance"], rtol=1e-4)  # ... the
    np.testing.assert_allclose(averaged.x_stop, raw.x_stop, atol=1e-5)  # rule sees the same raw outputs


def test_stop_option_of_the_cli(tmp_path):
    from dipjax.cli import main

    out = tmp_path / "run"
    code = main(["reconstruct", "--task", "denoise", "--image", "camera", "--size", "32", "--width", "4",
                 "--scales", "2", "--steps", "60", "--stop", "wmv", "--stop-window", "10", "--stop-patience", "15",
                 "--out", str(out), "--no-progress", "--gray"])
    assert code == 0
    metrics = json.loads((out / "camera" / "metrics.json").read_text())
    assert 10 <= metrics["iter_stop"] <= 60
    assert metrics["detection_gap"] == pytest.approx(metrics["psnr_peak_oracle"] - metrics["psnr_stop"])
    assert (out / "camera" / "stopped.png").exists()
    assert np.load(out / "camera" / "stopped.npy").shape == (32, 32, 1)
