"""What defines each method of the survey, checked on 32² images with tiny networks and a few steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from dipjax.data import load_image
from dipjax.methods import (DOP, DRP, OES, TVDIP, ASeqDIP, ConvDecoderFit, DeepDecoderFit, DeepRED, OESMask,
                            OESMaskLearning, ReferenceGuidedDIP, SelfGuidedDIP, learned_mask, oes_network)
from dipjax.methods.drp import split_batchnorm
from dipjax.methods.oes import bernoulli_kl
from dipjax.networks import UNet, conv_decoder, count_params, deep_decoder, skip_net
from dipjax.operators import Denoising, gaussian_noise, salt_and_pepper
from dipjax.problem import make_problem
from dipjax.regularizers import total_variation

SIZE = 32


def _problem(channels=1, noise="gaussian", size=SIZE):
    x = load_image("camera" if channels == 1 else "astronaut", size, channels)
    if noise == "gaussian":
        f = lambda k, y: gaussian_noise(k, y, 25 / 255, (0, 1))  # noqa: E731
    else:
        f = lambda k, y: salt_and_pepper(k, y, 0.1)  # noqa: E731
    return make_problem(jax.random.key(0), Denoising(in_shape=x.shape), x, f)


def _steps(method, problem, n, key=1):
    state = method.init(jax.random.key(0), problem)
    step = jax.jit(method.step)
    states = [state]
    for t in range(n):
        state, _ = step(state, problem, jax.random.fold_in(jax.random.key(key), t))
        states.append(state)
    return states


def _tiny_unet(c):
    return UNet(out_channels=c, in_channels=c, features=(4, 8, 8))


def test_tv_dip_objective_adds_weighted_tv():
    p = _problem()
    m = TVDIP(network=skip_net(out_channels=1, width=4, scales=2), tv_weight=0.3, tv_kind="isotropic")
    x = jnp.asarray(np.random.default_rng(0).random(p.image_shape), jnp.float32)
    mse = float(np.mean((np.asarray(x) - np.asarray(p.y)) ** 2))
    assert float(m.objective(x, p)) == pytest.approx(mse + 0.3 * float(total_variation(x, "isotropic")), rel=1e-5)
    with pytest.raises(ValueError):
        TVDIP(tv_kind="l0")


def test_self_guided_dip_trains_input_and_reports_the_average_output():
    p = _problem()
    m = SelfGuidedDIP(network=_tiny_unet(1), n_realizations=3, output_ema=0.0)
    s0, s1 = _steps(m, p, 1)
    assert not np.allclose(s0.z, s1.z)  # the input is optimised (lr_z = 0.1)
    # x̄ is the mean output over three non-negative uniform perturbations of amplitude c·max(z)
    key = jax.random.fold_in(jax.random.key(1), 0)
    eta = m.noise_scale * float(jnp.max(s0.z)) * jax.random.uniform(key, (3,) + s0.z.shape)
    assert float(eta.min()) >= 0
    outs = m.network.apply({"params": s0.params}, s0.z[None] + eta)
    np.testing.assert_allclose(s1.out, outs.mean(0), atol=1e-5)
    np.testing.assert_allclose(m.estimate(s1, p), s1.out)


def test_self_guided_dip_clips_each_groups_gradient_before_its_adam():
    """``clip_norm``: as PyTorch's ``clip_grad_norm_`` on θ and on z apart, then each Adam; against Adam and the
    clipping written out in numpy over three steps, with gradients above and below the bound."""
    m = SelfGuidedDIP(network=_tiny_unet(1), lr_theta=0.01, lr_z=0.1, clip_norm=1.0)
    rng = np.random.default_rng(0)
    params = {"a": np.zeros(5), "b": np.zeros((2, 3))}
    variables = {"params": params, "z": np.zeros(4)}
    state = m.optimizer.init(jax.tree.map(jnp.asarray, variables))
    moments = {"params": (0.0, 0.0), "z": (0.0, 0.0)}
    for t, scale in enumerate([5.0, 0.3, 2.0], start=1):
        grads = {"params": {"a": scale * rng.standard_normal(5), "b": scale * rng.standard_normal((2, 3))},
                 "z": 3 * scale * rng.standard_normal(4)}
        updates, state = m.optimizer.update(jax.tree.map(jnp.asarray, grads), state)
        for group, lr in (("params", 0.01), ("z", 0.1)):
            flat = np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads[group])])
            flat = flat * min(1.0, 1.0 / np.linalg.norm(flat))
            mu, nu = moments[group]
            mu, nu = 0.9 * mu + 0.1 * flat, 0.999 * nu + 0.001 * flat**2
            moments[group] = (mu, nu)
            expected = -lr * (mu / (1 - 0.9**t)) / (np.sqrt(nu / (1 - 0.999**t)) + 1e-8)
            got = np.concatenate([np.ravel(u) for u in jax.tree.leaves(updates[group])])
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("z_update", ["last_forward", "recompute"])
def test_aseq_dip_input_is_previous_stage_output(z_update):
    p = _problem()
    m = ASeqDIP(network=_tiny_unet(1), inner_steps=3, z_update=z_update, lr=1e-3)
    states = _steps(m, p, 6)
    np.testing.assert_allclose(states[0].z, p.y, atol=1e-6)  # z_0 = init_image(y) = y for denoising
    for t in (1, 2, 4, 5):  # inside a stage the input does not move
        np.testing.assert_array_equal(states[t].z, states[3 * (t // 3)].z)
    for k in (3, 6):
        prev = states[k - 1] if z_update == "last_forward" else states[k]
        expected = m.network.apply({"params": prev.params}, states[k - 3].z)
        np.testing.assert_allclose(states[k].z, expected, atol=1e-5)


def test_aseq_dip_purifier_hook_transforms_the_input_update():
    p = _problem()
    purify = lambda x, key: 0.5 * x + 0.25  # noqa: E731  any callable (a diffusion purification in practice)
    m = ASeqDIP(network=_tiny_unet(1), inner_steps=2, purifier=purify)
    states = _steps(m, p, 2)
    out = m.network.apply({"params": states[1].params}, states[0].z)
    np.testing.assert_allclose(states[2].z, 0.5 * out + 0.25, atol=1e-5)
    assert not np.allclose(states[2].z, states[2].out)


def test_deep_decoder_parameter_count_and_deterministic_fit():
    net = deep_decoder(3, k=128, layers=5)
    params = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros(net.input_shape(512, 512)))["params"]
    assert count_params(params) == 100_224  # Heckel & Hand's notebook: 7.85x compression of 512x512x3
    p = _problem()
    m = DeepDecoderFit(network=deep_decoder(1, k=8, layers=3))
    a = _steps(m, p, 2, key=1)[-1]
    b = _steps(m, p, 2, key=7)[-1]  # no input perturbation: the step key does not matter
    np.testing.assert_array_equal(a.out, b.out)


def test_conv_decoder_sizes_and_fit():
    net = conv_decoder((SIZE, 24), 1, channels=8, layers=4, in_size=(4, 3))
    z = jnp.zeros(net.input_shape(SIZE, 24))
    params = net.init(jax.random.key(0), z)["params"]
    assert net.apply({"params": params}, z).shape == (SIZE, 24, 1)
    with pytest.raises(ValueError, match="built for"):
        net.check_size(64, 64)
    m = ConvDecoderFit(network=conv_decoder((SIZE, SIZE), 1, channels=8, layers=4))
    s = _steps(m, _problem(), 3)
    assert float(jnp.mean((s[-1].out - _problem().y) ** 2)) < float(jnp.mean((s[0].out - _problem().y) ** 2))


def test_oes_mask_density_pruned_weights_stay_zero_save_load_and_transfer(tmp_path):
    p = _problem()
    net = oes_network(1, levels=1)
    stage1 = OESMaskLearning(network=net, sparsity=0.1)
    s = _steps(stage1, p, 3)[-1]
    assert not np.allclose(jax.tree_util.tree_leaves(s.logits)[0], 0)  # logits learn
    mask = learned_mask(s, 0.1, jax.random.key(3))
    n = count_params(s.params0)
    assert sum(int(m.sum()) for m in jax.tree_util.tree_leaves(mask.mask)) == int(0.1 * n)  # exactly k kept
    # the kept entries are a global top-k of the logits
    flat_logits = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(s.logits)])
    flat_mask = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(mask.mask)])
    assert flat_logits[flat_mask].min() >= flat_logits[~flat_mask].max()
    path = tmp_path / "mask.npz"
    mask.save(str(path))
    with pytest.raises(FileExistsError):
        mask.save(str(path))
    loaded = OESMask.load(str(path))
    assert loaded == mask and hash(loaded) == hash(mask)
    states = _steps(OES(network=net, mask=loaded), p, 4)
    for st in (states[0], states[-1]):
        for w, m in zip(jax.tree_util.tree_leaves(st.params), jax.tree_util.tree_leaves(mask.mask)):
            assert np.all(np.asarray(w)[~m] == 0)
    kept = [np.asarray(w)[m] for w, m in zip(jax.tree_util.tree_leaves(states[0].params),
                                             jax.tree_util.tree_leaves(mask.mask))]
    theta0 = [np.asarray(w)[m] for w, m in zip(jax.tree_util.tree_leaves(s.params0),
                                               jax.tree_util.tree_leaves(mask.mask))]
    assert all(np.array_equal(a, b) for a, b in zip(kept, theta0))  # same image: starts from θ₀ ⊙ m
    transfer = OES(network=net, mask=loaded, transfer=True).init(jax.random.key(5), p)
    np.testing.assert_array_equal(transfer.z, s.z)
    flat = lambda t: np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(t)])  # noqa: E731
    assert not np.allclose(flat(transfer.params), flat(s.params0) * flat_mask)  # fresh weights
    q, rho = np.array([0.1, 0.5, 0.9]), 0.05
    direct = q * np.log(q / rho) + (1 - q) * np.log((1 - q) / (1 - rho))
    np.testing.assert_allclose(bernoulli_kl(jnp.asarray(q), rho), direct, atol=1e-4)


def test_oes_kernel_scope_keeps_biases_and_batchnorm_dense():
    p = _problem()
    stage1 = OESMaskLearning(network=oes_network(1, levels=1), sparsity=0.1, prune="kernels")
    s = _steps(stage1, p, 2)[-1]
    named = traverse_util.flatten_dict(s.logits)
    assert all(np.all(np.asarray(v) == 0) for k, v in named.items() if k[-1] != "kernel")  # no gradient, no KL
    mask = traverse_util.flatten_dict(learned_mask(s, 0.1, jax.random.key(3), "kernels").mask)
    n_kernel = sum(v.size for k, v in named.items() if k[-1] == "kernel")
    assert sum(int(v.sum()) for k, v in mask.items() if k[-1] == "kernel") == int(0.1 * n_kernel)
    assert all(v.all() for k, v in mask.items() if k[-1] != "kernel")
    with pytest.raises(ValueError, match="pruning scope"):
        OESMaskLearning(prune="weights")


def test_dop_sparse_term_captures_salt_and_pepper():
    p = _problem(noise="s&p")
    corrupted = np.asarray(p.y != p.x_true)
    # α = 80 on 32² gray gives (g, h) the per-entry rate α·4/n ≈ 0.3 that α = 500 gives on 64² RGB (see DOP's
    # docstring: the mean-reduced loss makes that rate scale as α/n); the authors' 512² RGB runs use 0.0025.
    m = DOP(network=skip_net(out_channels=1, width=8, scales=3), lr=1.0, lr_ratio=80.0)
    s = _steps(m, p, 150)[-1]
    sparse = np.abs(np.asarray(DOP.sparse_component(s)))
    print("DOP |s| on corrupted / clean pixels:", sparse[corrupted].mean(), sparse[~corrupted].mean())
    assert sparse[corrupted].mean() > 10 * sparse[~corrupted].mean()
    assert (sparse > 0.1)[~corrupted].mean() < 0.02  # s stays sparse off the corruption ...
    assert (sparse > 0.1)[corrupted].mean() > 0.6  # ... and picks up most of it


def test_drp_changes_only_batchnorm_affines_and_input():
    p = _problem()
    m = DRP(network=skip_net(out_channels=1, width=8, scales=1, in_channels=3))
    s0, *_, s3 = _steps(m, p, 3)
    for a, b in zip(jax.tree_util.tree_leaves(s0.frozen), jax.tree_util.tree_leaves(s3.frozen)):
        np.testing.assert_array_equal(a, b)
    kernels = [k for k in jax.tree_util.tree_flatten_with_path(s0.frozen)[0] if "kernel" in str(k[0])]
    assert kernels and not any("scale" in str(k[0]) for k in jax.tree_util.tree_flatten_with_path(s0.frozen)[0])
    for name in ("bn", "bn_in", "z"):
        assert not np.allclose(jax.tree_util.tree_leaves(s0.trainable[name])[0],
                               jax.tree_util.tree_leaves(s3.trainable[name])[0])
    bn, rest = split_batchnorm({"c": {"kernel": 1, "bias": 2}, "b": {"scale": 3, "bias": 4}})
    assert bn == {"b": {"scale": 3, "bias": 4}} and rest == {"c": {"kernel": 1, "bias": 2}}


def test_deepred_admm_updates_and_stale_denoiser():
    p = _problem()
    calls = lambda x: 0.5 * x  # noqa: E731  a stand-in denoiser whose output is easy to predict
    m = DeepRED(network=skip_net(out_channels=1, width=4, scales=2), denoiser=calls, denoiser_every=3,
                adaptive=False)
    states = _steps(m, p, 4)
    for t in range(4):
        prev, new = states[t], states[t + 1]
        d = 0.5 * prev.x if t % 3 == 0 else prev.d
        np.testing.assert_allclose(new.d, d, atol=1e-6)  # refreshed every 3 steps, stale in between
        x = np.clip((m.beta * d + m.mu * (new.out + prev.u)) / (m.beta + m.mu), 0, 1)
        np.testing.assert_allclose(new.x, x, atol=1e-6)
        np.testing.assert_allclose(new.u, prev.u + new.out - new.x, atol=1e-6)


def test_reference_guided_dip_uses_the_reference_as_input():
    p = _problem()
    ref = np.asarray(p.x_true)[::-1]  # any image of the right shape (here: the truth flipped)
    m = ReferenceGuidedDIP(network=skip_net(out_channels=1, width=4, scales=2, in_channels=1), reference=ref)
    np.testing.assert_array_equal(m.init(jax.random.key(0), p).z, ref)
    with pytest.raises(ValueError, match="does not fit"):
        ReferenceGuidedDIP(network=skip_net(out_channels=1, width=4, scales=2), reference=ref).init(
            jax.random.key(0), p)


def test_aseq_dip_starts_from_the_degraded_image_of_super_resolution():
    """aSeqDIP's z₀ is the operator's init_image (bicubic for SR), not Aᵀy, which is 1/f² too dark."""
    from dipjax.operators import SuperResolution

    x = load_image("camera", SIZE, 1)
    p = make_problem(jax.random.key(0), SuperResolution(in_shape=x.shape, factor=4), x)
    state = ASeqDIP(network=_tiny_unet(1)).init(jax.random.key(0), p)
    assert abs(float(state.z.mean()) - float(x.mean())) < 0.02
