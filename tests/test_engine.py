"""The engine and vanilla DIP: batching semantics, strategies, keys, history, oracle peak, monitors, own loops."""

import collections
import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from dipjax.data import load_image
from dipjax.engine import make_program, reconstruct
from dipjax.methods import DIP
from dipjax.monitors import ImageQuality, OraclePeak, chain, default_monitors
from dipjax.networks import skip_net
from dipjax.operators import Denoising, Inpainting, gaussian_noise, random_mask
from dipjax.problem import make_problem, stack_problems

NAMES = ["camera", "moon", "coins", "astronaut"]


def _problems(size=32, names=NAMES):
    op = Denoising(in_shape=(size, size, 1))
    noise = lambda k, y: gaussian_noise(k, y, 25 / 255, (0, 1))  # noqa: E731
    return [make_problem(jax.random.key(i), op, load_image(n, size, channels=1), noise) for i, n in enumerate(names)]


def _dip(width=8, scales=2, **kw):
    return DIP(network=skip_net(out_channels=1, width=width, scales=scales), **kw)


def test_sequential_batch_reproduces_single_runs_bit_for_bit():
    """Survey Fig. 3 protocol: with one seed, every image of a batch starts from the same network and input as a
    single-image run; the sequential strategy (CPU default) runs the single-image program, so it reproduces them."""
    probs, method = _problems(names=NAMES[:2]), _dip()
    batch = reconstruct(method, stack_problems(probs), jax.random.key(7), 30, batch="sequential")
    for i, p in enumerate(probs):
        single = reconstruct(method, p, jax.random.key(7), 30)
        np.testing.assert_array_equal(batch.x_final[i], single.x_final)
        np.testing.assert_array_equal(batch.history["loss"][i], single.history["loss"])
    np.testing.assert_array_equal(batch.state[0].z, batch.state[1].z)  # one input for all images (one init key)


def test_vmap_batch_matches_single_runs_statistically():
    """Under vmap (the accelerator default) each image is a grouped convolution, summed in another order: the first
    step (the initial network's loss) agrees to rounding — 6e-4 relative on an H200, whose float32 convolutions
    round to TF32 — and after 100 steps the per-image PSNRs agree on average (trajectories are chaotic at the
    rounding level: Adam's first update is ±lr wherever a gradient's sign flips, see README)."""
    probs, method = _problems(names=NAMES[:2]), _dip()  # two images: the vmapped programs of test_strategies_agree
    batch = reconstruct(method, stack_problems(probs), jax.random.key(7), 100, batch="vmap")
    singles = [reconstruct(method, p, jax.random.key(7), 100) for p in probs]
    first = np.array([s.history["loss"][0] for s in singles])
    np.testing.assert_allclose(batch.history["loss"][:, 0], first, rtol=2e-3)
    final = np.array([s.history["psnr"][-1] for s in singles])
    peak = np.array([s.psnr_peak_oracle for s in singles])
    print("vmap − single, final PSNR per image:", batch.history["psnr"][:, -1] - final)
    assert abs(np.mean(batch.history["psnr"][:, -1] - final)) < 0.3
    assert np.max(np.abs(batch.psnr_peak_oracle - peak)) < 0.5


def test_independent_keys_give_each_image_its_own_network():
    probs, method = _problems(names=NAMES[:2]), _dip()
    r = reconstruct(method, stack_problems(probs), jax.random.key(0), 2, independent_keys=True)
    assert not np.array_equal(r.state[0].z, r.state[1].z)


@pytest.mark.parametrize("batch,loop", [("vmap", "host"), ("sequential", "scan"), ("vmap", "scan")])
def test_strategies_agree(batch, loop):
    """Strategies compute the same iterates up to float reassociation. The first loss (the initial network) agrees
    to rounding under every strategy; scan runs the same single-image program as the host loop, so it agrees
    throughout. Under vmap each image is a grouped convolution summed in another order, and DIP trajectories are
    chaotic at the 1e-7 level (Adam's first update is ±lr for every weight, also where the gradient is ~1e-9 and
    its sign depends on summation order): on this 2-scale net the second and third losses differ by 0.8 % and the
    images by 5e-3 on average (measured), so vmap gets loose bounds after the first step."""
    probs, method = _problems(names=NAMES[:2]), _dip()
    ref = reconstruct(method, stack_problems(probs), jax.random.key(3), 3, batch="sequential", loop="host")
    r = reconstruct(method, stack_problems(probs), jax.random.key(3), 3, batch=batch, loop=loop, sync_every=2)
    assert r.strategy == (batch, loop) and r.steps == 3
    np.testing.assert_allclose(r.history["loss"][:, 0], ref.history["loss"][:, 0], rtol=1e-5)
    loose = batch == "vmap"
    np.testing.assert_allclose(r.history["loss"], ref.history["loss"], rtol=3e-2 if loose else 1e-5)
    np.testing.assert_allclose(r.history["psnr"], ref.history["psnr"], atol=0.15 if loose else 1e-4)
    assert np.mean(np.abs(r.x_final - ref.x_final)) < (2e-2 if loose else 1e-5)


def test_same_key_same_result_and_different_key_differs():
    p, method = _problems(names=["camera"])[0], _dip()
    a = reconstruct(method, p, jax.random.key(0), 20)
    b = reconstruct(method, p, jax.random.key(0), 20)
    c = reconstruct(method, p, jax.random.key(1), 20)
    np.testing.assert_array_equal(a.x_final, b.x_final)
    assert not np.array_equal(a.x_final, c.x_final)


def test_history_oracle_and_timings():
    p, method = _problems(names=["camera"])[0], _dip()
    r = reconstruct(method, p, jax.random.key(0), 40, sync_every=7)  # syncs do not divide the run
    assert set(r.history) == {"loss", "psnr", "ssim", "finite"} and all(v.shape == (40,) for v in r.history.values())
    assert np.all(np.isfinite(r.history["psnr"]))
    assert r.run_seconds > 0
    np.testing.assert_array_equal(r.sync_times[:, 0], [7, 14, 21, 28, 35, 40])
    assert np.all(np.diff(r.sync_times[:, 1]) > 0)
    other = reconstruct(method, p, jax.random.key(0), 40, sync_every=40)  # one sync: the same numbers
    np.testing.assert_array_equal(other.history["loss"], r.history["loss"])
    # The last PSNR entry is the PSNR of the returned estimate (independent PSNR implementation).
    assert abs(r.history["psnr"][-1] - peak_signal_noise_ratio(np.asarray(p.x_true), r.x_final, data_range=1)) < 1e-3
    i = int(np.argmax(r.history["psnr"]))
    assert r.iter_peak_oracle == i + 1
    assert abs(peak_signal_noise_ratio(np.asarray(p.x_true), r.x_peak_oracle, data_range=1) - r.history["psnr"][i]) < 1e-3


def test_compile_time_reported_once_per_configuration():
    p = _problems(names=["camera"])[0]
    method = _dip(width=4, scales=2)  # a configuration no other test compiles
    first = reconstruct(method, p, jax.random.key(0), 3)
    again = reconstruct(method, p, jax.random.key(1), 5)  # other key and length: same program
    longer = reconstruct(method, p, jax.random.key(1), 60, sync_every=7)  # syncing more often: same program
    assert first.compile_seconds > 0.1 and again.compile_seconds == 0.0 and longer.compile_seconds == 0.0


TRACES: collections.Counter = collections.Counter()


@dataclasses.dataclass(frozen=True)
class CountingDIP(DIP):
    """DIP that counts how often JAX traces its ``init`` and ``step`` (Python runs them only while tracing)."""

    name: str = "counting-dip"

    def init(self, key, problem):
        TRACES["init"] += 1
        return super().init(key, problem)

    def step(self, state, problem, key):
        TRACES["step"] += 1
        return super().step(state, problem, key)


def test_the_network_is_traced_once_per_configuration():
    """Tracing a network is a second or more of Python per configuration, paid by every test and every run: the
    metric names, the init program, the one-step and scan programs, and their vmapped forms share one trace of
    ``init`` and one of ``step`` (lowered here, not compiled: tracing is what is counted)."""
    probs = _problems(size=16, names=["camera", "moon"])
    method = CountingDIP(network=skip_net(out_channels=1, width=2, scales=1))
    monitor, key = default_monitors(track_ssim=False), jax.random.key(0)
    TRACES.clear()
    for problem, keys, vmapped in [(probs[0], key, False),
                                   (stack_problems(probs).replace(batch_size=None), jax.random.split(key), True)]:
        prog = make_program(method, monitor, problem, vmapped=vmapped)
        carry = jax.eval_shape(prog.init, keys, problem)
        for program in (prog.step, prog.scan(4)):
            program.lower(carry, problem, keys, np.int32(0))
    assert dict(TRACES) == {"init": 1, "step": 1}


@dataclasses.dataclass(frozen=True)
class RawOutputPSNR:
    """A monitor of the PSNR of the network's raw output (``view.out``), beside the estimate's."""

    name: str = "raw"

    def init(self, view):
        return ()

    def update(self, state, view):
        from dipjax.metrics import psnr

        return state, {"psnr_raw": psnr(jnp.clip(view.out, 0, 1), view.problem.x_true)}

    def summary(self, state):
        return {}


def test_dip_denoises_and_ema_smooths():
    """One run with an output EMA (compiled once): the raw network outputs denoise, and their average, the
    estimate, fluctuates far less from step to step than they do."""
    p = _problems(names=["camera"])[0]
    input_psnr = peak_signal_noise_ratio(np.asarray(p.x_true), np.asarray(p.y), data_range=1)
    r = reconstruct(_dip(output_ema=0.99), p, jax.random.key(0), 200,
                    monitor=chain(default_monitors(track_ssim=False), RawOutputPSNR()))
    raw, averaged = r.history["psnr_raw"], r.history["psnr"]
    reference = [peak_signal_noise_ratio(np.asarray(p.x_true), np.clip(np.asarray(r.state.out), 0, 1), data_range=1)]
    np.testing.assert_allclose(raw[-1], reference[0], atol=1e-3)  # the monitor's PSNR is scikit-image's
    assert raw.max() > input_psnr + 2.5
    assert r.history["loss"][-1] < 0.5 * r.history["loss"][5]
    assert np.std(np.diff(averaged[100:])) < 0.5 * np.std(np.diff(raw[100:]))


def test_dip_through_a_non_trivial_operator_fits_only_observed_pixels():
    x = load_image("camera", 32, channels=1)
    mask = random_mask(jax.random.key(0), 32, 32, 0.5)
    p = make_problem(jax.random.key(1), Inpainting.from_mask(mask, 1), x)
    r = reconstruct(_dip(input_noise_std=0.03), p, jax.random.key(0), 150)
    assert r.history["loss"][-1] < 0.2 * r.history["loss"][0]
    assert np.mean((r.x_final - np.asarray(x)) ** 2) < np.mean((0.5 - np.asarray(x)) ** 2)


class _FixedStop(NamedTuple):
    stopped: jax.Array
    t_stop: jax.Array
    x_stop: jax.Array


@dataclasses.dataclass(frozen=True)
class StopAt:
    """A stopper that fires after update ``at`` (0-based) and returns that step's output (the monitor contract)."""

    at: int
    name: str = "stop-at"

    def init(self, view):
        return _FixedStop(jnp.asarray(False), jnp.asarray(-1, jnp.int32), view.out)

    def update(self, s, view):
        hit = view.t == self.at
        return _FixedStop(s.stopped | hit, jnp.where(hit, view.t, s.t_stop), jnp.where(hit, view.out, s.x_stop)), {}

    def summary(self, s):
        return {"x_stop": s.x_stop, "iter_stop": s.t_stop + 1}

    def stopped(self, s):
        return s.stopped


def test_stopper_hook_returns_named_iterate_and_exits_early():
    probs, method = _problems(names=NAMES[:2]), _dip()
    full = reconstruct(method, probs[0], jax.random.key(0), 30)
    r = reconstruct(method, probs[0], jax.random.key(0), 30, stopper=StopAt(9))
    assert r.iter_stop == 10
    assert abs(peak_signal_noise_ratio(np.asarray(probs[0].x_true), r.x_stop, data_range=1)
               - full.history["psnr"][9]) < 1e-3
    early = reconstruct(method, stack_problems(probs), jax.random.key(0), 200, stopper=StopAt(9), stop_early=True,
                        sync_every=5)
    assert early.steps == 10 and early.history["loss"].shape == (2, 10)
    np.testing.assert_array_equal(early.iter_stop, [10, 10])


def test_own_loop_with_the_jitted_programs_equals_reconstruct():
    p, method = _problems(names=["camera"])[0], _dip()
    prog = make_program(method, default_monitors(), p)
    assert prog.names == ("finite", "loss", "psnr", "ssim") and prog.history_length == 100
    init_key, run_key = jax.random.split(jax.random.key(3))
    carry = prog.init(init_key, p)
    for t in range(10):
        carry = prog.step(carry, p, run_key, t)
    losses = np.asarray(jax.device_get(carry.history)["loss"])[:10]
    r = reconstruct(method, p, jax.random.key(3), 10, sync_every=5)
    np.testing.assert_array_equal(losses, r.history["loss"])
    np.testing.assert_array_equal(method.estimate(carry.state, p), r.x_final)
    assert float(prog.summary(carry)["psnr_peak_oracle"]) == pytest.approx(float(r.psnr_peak_oracle))


def test_monitors_compose_and_record_what_they_name():
    p, method = _problems(names=["camera"])[0], _dip(width=4, scales=1)
    r = reconstruct(method, p, jax.random.key(0), 12, monitor=chain(ImageQuality(ssim=False), OraclePeak()))
    assert set(r.history) == {"loss", "psnr"}
    r = reconstruct(method, p.replace(x_true=None), jax.random.key(0), 12)  # no truth: no quality, no oracle
    assert set(r.history) == {"loss", "finite"} and r.psnr_peak_oracle is None  # (the divergence guard stays)
    with pytest.raises(ValueError, match="distinct names"):
        chain(OraclePeak(), OraclePeak())


def test_psnr_is_of_the_clipped_estimate():
    """Every method is scored on its estimate clipped to [0, 1], as saved: an output of 1.5 counts as 1."""
    from dipjax.monitors import quality_image

    p = _problems(names=["camera"])[0]
    x = jnp.asarray(p.x_true) * 3 - 1
    np.testing.assert_array_equal(quality_image(x, p), jnp.clip(x, 0, 1))


def test_bad_arguments():
    p, method = _problems(names=["camera"])[0], _dip()
    with pytest.raises(ValueError, match="positive integer"):
        reconstruct(method, p, jax.random.key(0), 0)
    with pytest.raises(ValueError, match="got '3'"):
        reconstruct(method, p, jax.random.key(0), "3")
    with pytest.raises(ValueError, match="got None"):
        reconstruct(method, p, jax.random.key(0), None)
    with pytest.raises(ValueError, match="stop_early needs an early-stopping rule"):
        reconstruct(method, p, jax.random.key(0), 2, stop_early=True)
    with pytest.raises(ValueError, match="unknown strategy"):
        reconstruct(method, p, jax.random.key(0), 2, batch="pmap")
    with pytest.raises(ValueError, match="multiples"):
        reconstruct(DIP(network=skip_net(out_channels=1, width=8)), p, jax.random.key(0), 2)


def test_batched_masks_are_a_batch_not_a_broadcast():
    """A stacked inpainting problem (one mask per image) runs per image, like the single problems."""
    x = [load_image(n, 32, channels=1) for n in ("camera", "coins")]
    probs = [make_problem(jax.random.key(i), Inpainting.from_mask(random_mask(jax.random.key(i), 32, 32, 0.5), 1),
                          xi) for i, xi in enumerate(x)]
    batch = stack_problems(probs)
    assert batch.batch_size == 2 and batch[1].batch_size is None
    r = reconstruct(_dip(input_noise_std=0.03), batch, jax.random.key(0), 4)
    assert r.x_final.shape == (2, 32, 32, 1) and r.history["psnr"].shape == (2, 4)
    single = reconstruct(_dip(input_noise_std=0.03), probs[1], jax.random.key(0), 4)
    np.testing.assert_array_equal(r.x_final[1], single.x_final)
