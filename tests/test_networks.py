"""Networks: published parameter counts, initialisation, per-image normalisation, resampling references, sizes."""

from functools import partial

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax.networks import (BatchNorm1Image, Conv2d, conv_decoder, count_params, deep_decoder, init_params,
                             medium_unet, shallow_unet, skip_net, upsample2x)
from dipjax.networks.unet import UNet


def _skip_count(c_in, c_out, down, up, skip, kd=3, ku=3, ks=1):
    """Parameter count of DIP's skip net, written from the architecture description (conv weights + biases, BN
    scale + shift)."""
    conv = lambda i, o, k: i * o * k * k + o  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    total, cin = 0, c_in
    for i in range(len(down)):
        if skip[i]:
            total += conv(cin, skip[i], ks) + bn(skip[i])
        total += conv(cin, down[i], kd) + bn(down[i]) + conv(down[i], down[i], kd) + bn(down[i])
        deeper_out = up[i + 1] if i < len(down) - 1 else down[i]
        total += bn(skip[i] + deeper_out) + conv(skip[i] + deeper_out, up[i], ku) + bn(up[i])
        total += conv(up[i], up[i], 1) + bn(up[i])  # need1x1_up
        cin = down[i]
    return total + conv(up[0], c_out, 1)


def test_deep_decoder_published_parameter_count():
    net = deep_decoder(out_channels=3, k=128, layers=5)  # 6 blocks
    z = jnp.zeros(net.input_shape(512, 512))
    assert z.shape == (16, 16, 128)
    params = jax.eval_shape(net.init, jax.random.key(0), z)
    assert count_params(params) == 100_224  # Heckel & Hand: 7.85x compression of 512x512x3
    small = deep_decoder(out_channels=3, k=64, layers=5)
    assert count_params(jax.eval_shape(small.init, jax.random.key(0), jnp.zeros(small.input_shape(512, 512)))) == 25_536


@pytest.mark.parametrize("width,scales,skip", [(128, 5, 4), (16, 3, 0), (8, 4, 2)])
def test_skip_net_parameter_count(width, scales, skip):
    net = skip_net(out_channels=3, width=width, scales=scales, skip_channels=skip)
    params = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((64, 64, 32)))
    assert count_params(params) == _skip_count(32, 3, [width] * scales, [width] * scales, [skip] * scales)


def test_skip_net_output_and_sizes():
    net = skip_net(out_channels=1, width=8)
    z = 0.1 * jax.random.uniform(jax.random.key(0), (64, 64, 32))
    params = net.init(jax.random.key(1), z)
    out = net.apply(params, z)
    assert out.shape == (64, 64, 1) and float(out.min()) > 0 and float(out.max()) < 1
    with pytest.raises(ValueError, match="multiples of 32"):
        net.check_size(48, 64)
    with pytest.raises(ValueError, match="at least 64"):
        net.check_size(32, 32)
    skip_net(scales=4).check_size(32, 32)


def test_pytorch_default_initialisation():
    conv = Conv2d(16, 3, weight_init="pytorch")
    x = jnp.zeros((8, 8, 32))
    p = conv.init(jax.random.key(0), x)["params"]
    bound = 1 / np.sqrt(32 * 9)  # torch: kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w, b = np.asarray(p["kernel"]), np.asarray(p["bias"])
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound / np.sqrt(3)
    assert np.abs(b).max() <= bound
    p2 = Conv2d(16, 3, weight_init="normal002").init(jax.random.key(0), x)["params"]
    assert abs(float(p2["kernel"].std()) - 0.02) < 0.002 and float(jnp.abs(p2["bias"]).max()) == 0


def _random_draws(fn, *args) -> int:
    """How many ``random_bits`` draws the jaxpr of ``fn(*args)`` makes (sub-jaxprs included)."""
    def count(jaxpr):
        return sum((eqn.primitive.name == "random_bits")
                   + sum(count(sub) for sub in jax.extend.core.jaxprs_in_params(eqn.params)) for eqn in jaxpr.eqns)
    return count(jax.make_jaxpr(fn)(*args).jaxpr)


@pytest.mark.parametrize("name", ["skip", "skip_normal002", "skip_lecun", "unet", "deep_decoder", "conv_decoder"])
def test_init_params_gives_network_init_with_the_weights_drawn_together(name):
    """``init_params`` gives ``network.init``'s variables bit for bit (jitted, and vmapped over keys), with the
    weights drawn in a few ``random_bits`` calls (per kind, within a size ratio) instead of one each."""
    nets = {"skip": skip_net(3, width=8, scales=2), "skip_normal002": skip_net(1, 8, 2, weight_init="normal002"),
            "skip_lecun": skip_net(1, 8, 2, weight_init="lecun"), "unet": UNet(2, 2, features=(8, 16, 16)),
            "deep_decoder": deep_decoder(3, k=8, layers=3), "conv_decoder": conv_decoder((32, 32), 2, channels=8)}
    net = nets[name]
    z = jax.random.uniform(jax.random.key(3), net.input_shape(32, 32))
    keys = jax.random.split(jax.random.key(11), 2)
    got = jax.jit(jax.vmap(lambda k: init_params(net, k, z)))(keys)
    for i in range(2):
        reference = jax.jit(net.init)(keys[i], z)
        assert jax.tree_util.tree_structure(reference) == jax.tree_util.tree_structure(got)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(reference)):
            np.testing.assert_array_equal(a[i], b)
    plain, together = _random_draws(net.init, keys[0], z), _random_draws(partial(init_params, net), keys[0], z)
    if name == "skip_lecun":  # flax's lecun_normal is not one of dipjax's initialisers: drawn one by one as before
        assert together == plain
    else:
        assert plain >= 4 and together <= 4 and together < plain


def test_init_params_draws_one_by_one_where_a_prefix_is_not_the_shorter_draw():
    """With JAX's original (non-partitionable) threefry a prefix of a longer draw is not the shorter draw: init_params
    must then draw each array on its own, and still give network.init's values."""
    net = skip_net(1, width=4, scales=2)
    z = jax.random.uniform(jax.random.key(3), net.input_shape(16, 16))
    before = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", False)
    try:
        key = jax.random.key(5)
        assert not np.array_equal(jax.random.uniform(key, (8,))[:4], jax.random.uniform(key, (4,)))
        got, reference = jax.jit(partial(init_params, net))(key, z), jax.jit(net.init)(key, z)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(reference)):
            np.testing.assert_array_equal(a, b)
        assert _random_draws(partial(init_params, net), key, z) == _random_draws(net.init, key, z)
    finally:
        jax.config.update("jax_threefry_partitionable", before)


def test_batchnorm_of_one_image_is_per_image_spatial_normalisation():
    bn = BatchNorm1Image()
    x = 3 + 2 * jax.random.normal(jax.random.key(0), (2, 16, 16, 4))
    p = bn.init(jax.random.key(1), x)
    y = bn.apply(p, x)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1, atol=1e-3)
    # A stack of images is normalised image by image, as independent batch-size-1 runs would be.
    np.testing.assert_allclose(bn.apply(p, x[1]), y[1], rtol=1e-6, atol=1e-6)


def test_batchnorm_derivative_in_closed_form_matches_autodiff_and_finite_differences(x64):
    """batch_norm_1image's hand-written tangent against JAX's autodiff of the two-pass formula (reverse and forward
    mode, batched by vmap) and against central differences, all in float64."""
    from dipjax.networks.layers import batch_norm_1image, batch_norm_1image_plain

    k = jax.random.split(jax.random.key(0), 5)
    x = 1.5 + 3 * jax.random.normal(k[0], (3, 6, 7, 5), jnp.float64)
    dx = jax.random.normal(k[1], x.shape, jnp.float64)
    w = jax.random.normal(k[2], x.shape, jnp.float64)
    scale, bias = 1 + 0.3 * jax.random.normal(k[3], (5,), jnp.float64), jax.random.normal(k[4], (5,), jnp.float64)

    def objective(bn):
        return lambda x, s, b: jnp.vdot(w, jnp.tanh(bn(x, s, b)))

    for got, want in zip(jax.grad(objective(batch_norm_1image), (0, 1, 2))(x, scale, bias),
                         jax.grad(objective(batch_norm_1image_plain), (0, 1, 2))(x, scale, bias)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    tangent = jax.jvp(lambda x: batch_norm_1image(x, scale, bias), (x,), (dx,))[1]
    np.testing.assert_allclose(tangent, jax.jvp(lambda x: batch_norm_1image_plain(x, scale, bias), (x,), (dx,))[1],
                               rtol=1e-10, atol=1e-12)
    h = 1e-5
    central = (batch_norm_1image(x + h * dx, scale, bias) - batch_norm_1image(x - h * dx, scale, bias)) / (2 * h)
    np.testing.assert_allclose(tangent, central, rtol=1e-6, atol=1e-8)
    per_image = jax.vmap(jax.grad(lambda x, w: jnp.vdot(w, jnp.tanh(batch_norm_1image(x, scale, bias)))))(x, w)
    np.testing.assert_allclose(per_image, jax.grad(objective(batch_norm_1image_plain))(x, scale, bias),
                               rtol=1e-10, atol=1e-12)


def test_pointwise_conv_derivatives_are_the_channel_products(x64):
    """The 1×1 convolution's hand-written tangent against autodiff of XLA's convolution (reverse and forward mode),
    against the matrix products written with einsum, and batched by vmap, in float64."""
    from dipjax.networks.layers import pointwise_conv

    k = jax.random.split(jax.random.key(1), 5)
    x = jax.random.normal(k[0], (2, 5, 6, 4), jnp.float64)
    w = jax.random.normal(k[1], (1, 1, 4, 3), jnp.float64)
    g = jax.random.normal(k[2], (2, 5, 6, 3), jnp.float64)

    def plain(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    np.testing.assert_allclose(pointwise_conv(x, w), np.einsum("nhwi,io->nhwo", x, w[0, 0]), rtol=1e-12)
    _, vjp = jax.vjp(pointwise_conv, x, w)
    dx, dw = vjp(g)
    np.testing.assert_allclose(dx, np.einsum("nhwo,io->nhwi", g, w[0, 0]), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dw[0, 0], np.einsum("nhwi,nhwo->io", x, g), rtol=1e-12, atol=1e-13)
    for got, want in zip((dx, dw), jax.vjp(plain, x, w)[1](g)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    tx, tw = jax.random.normal(k[3], x.shape, jnp.float64), jax.random.normal(k[4], w.shape, jnp.float64)
    np.testing.assert_allclose(jax.jvp(pointwise_conv, (x, w), (tx, tw))[1], jax.jvp(plain, (x, w), (tx, tw))[1],
                               rtol=1e-12, atol=1e-13)
    per_image = jax.vmap(lambda x, g: jax.vjp(pointwise_conv, x[None], w)[1](g[None])[1])(x, g)
    np.testing.assert_allclose(per_image.sum(0), dw, rtol=1e-12, atol=1e-13)


def test_pointwise_filter_gradient_compiles_without_a_layout_copy():
    """The 1×1 convolution's filter gradient ``Σ xᵀ g`` reads the activation as it lies: XLA's CPU compiler emits
    its matrix product with no copy or transpose of ``x`` first (written over the 4-D arrays it copied ``x``
    channel-major, 11 such copies per DIP step; ``python experiments/bench_pointwise.py``)."""
    import re

    from dipjax.networks.layers import pointwise_conv

    x = jnp.ones((1, 16, 16, 8), jnp.float32)
    w, g = jnp.ones((1, 1, 8, 8), jnp.float32), jnp.ones((1, 16, 16, 8), jnp.float32)
    filter_gradient = jax.jit(lambda x, w, g: jax.vjp(lambda w: pointwise_conv(x, w), w)[1](g)[0])
    text = filter_gradient.lower(x, w, g).compile().as_text()
    assert re.search(r" dot\(", text), "expected the filter gradient to be a matrix product"
    moves = re.findall(r"%\w*(?:copy|transpose)\w* = \S+ (?:fusion|copy|transpose)\(", text)
    assert not moves, f"the filter gradient moves x into another layout first: {moves}"


@pytest.mark.parametrize("shape,p", [((2, 5, 7, 3), 1), ((1, 6, 4, 2), 2), ((1, 2, 2, 1), 1), ((1, 4, 9, 1), 3),
                                     ((1, 1, 3, 2), 1), ((1, 3, 3, 1), 3)])
def test_reflection_pad_is_numpys_reflect_mode_with_its_derivatives(x64, shape, p):
    """Against ``np.pad(mode="reflect")`` exactly (the last two shapes take the ``jnp.pad`` path: a side of at most
    p pixels), its reverse and forward derivatives against autodiff of ``jnp.pad`` in float64, and under vmap."""
    from dipjax.networks.layers import reflection_pad

    k = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(k[0], shape, jnp.float64)
    widths = ((0, 0), (p, p), (p, p), (0, 0))
    np.testing.assert_array_equal(reflection_pad(x, p), np.pad(np.asarray(x), widths, mode="reflect"))
    g = jax.random.normal(k[1], (shape[0], shape[1] + 2 * p, shape[2] + 2 * p, shape[3]), jnp.float64)
    plain = lambda v: jnp.pad(v, widths, mode="reflect")  # noqa: E731
    np.testing.assert_allclose(jax.vjp(lambda v: reflection_pad(v, p), x)[1](g)[0], jax.vjp(plain, x)[1](g)[0],
                               rtol=1e-13, atol=1e-13)
    t = jax.random.normal(k[2], shape, jnp.float64)
    np.testing.assert_array_equal(jax.jvp(lambda v: reflection_pad(v, p), (x,), (t,))[1], plain(t))
    np.testing.assert_array_equal(jax.vmap(lambda v: reflection_pad(v[None], p)[0])(x), plain(x))


def test_networks_treat_images_independently():
    net = skip_net(out_channels=3, width=8, scales=2)
    z = jax.random.uniform(jax.random.key(0), (2, 32, 32, 32))
    params = net.init(jax.random.key(1), z[0])
    both = net.apply(params, z)
    np.testing.assert_allclose(both[1], net.apply(params, z[1]), rtol=1e-5, atol=1e-6)


def test_bilinear_upsampling_matches_references():
    x = jax.random.normal(jax.random.key(0), (5, 7, 3))
    # align_corners=False (half-pixel centres) for ×2 upsampling equals jax.image.resize's bilinear.
    ref = jax.image.resize(x, (10, 14, 3), "bilinear")
    np.testing.assert_allclose(upsample2x(x, "bilinear"), ref, rtol=1e-5, atol=1e-6)
    # align_corners=True: sample positions i (n - 1) / (2n - 1), separable np.interp reference.
    xn = np.asarray(x)
    rows = np.stack([np.stack([np.interp(np.arange(10) * 4 / 9, np.arange(5), xn[:, j, c]) for j in range(7)], 1)
                     for c in range(3)], -1)
    full = np.stack([np.stack([np.interp(np.arange(14) * 6 / 13, np.arange(7), rows[i, :, c]) for i in range(10)], 0)
                     for c in range(3)], -1)
    np.testing.assert_allclose(upsample2x(x, "bilinear", align_corners=True), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(upsample2x(x, "nearest")[::2, ::2], x)


def _unet_count(c_in, c_out, f):
    """Milesial U-Net parts: DoubleConv(i, mid, o) = 3x3 convs without bias, each followed by BN (2 per channel)."""
    double = lambda i, m, o: i * 9 * m + 2 * m + m * 9 * o + 2 * o  # noqa: E731
    total = double(c_in, f[0], f[0]) + sum(double(f[j - 1], f[j], f[j]) for j in range(1, len(f)))
    h = f[-1]
    for j in reversed(range(1, len(f))):
        cat, out = f[j - 1] + h, f[max(j - 2, 0)]
        total += double(cat, cat // 2, out)
        h = out
    return total + h * c_out + c_out


@pytest.mark.parametrize("factory,c_in,features", [(shallow_unet, 3, (64, 128, 128)),
                                                   (medium_unet, 2, (64, 128, 256, 256))])
def test_unets(factory, c_in, features):
    expected = _unet_count(c_in, c_in, features)
    net = factory(in_channels=c_in, out_channels=c_in)
    z = jnp.zeros((32, 32, c_in))
    params = jax.eval_shape(net.init, jax.random.key(0), z)
    out = jax.eval_shape(net.apply, params, z)
    assert out.shape == (32, 32, c_in)
    assert count_params(params) == expected  # shallow: 1,036,035 (checked by hand)


@pytest.mark.parametrize("variant", ["mli", "deepinv"])
def test_conv_decoder_matches_its_upstream_structure(variant):
    """Parameter count from each upstream's layer list (PyTorch BatchNorm2d affine = 2c): MLI-lab decoder_conv.py,
    per stage BN, conv3×3, BN, conv1×1, BN (no biases), head BN + conv1×1; deepinv, per stage conv3×3 + bias and BN,
    then conv3×3 + bias, BN and a 1×1 head with bias."""
    from dipjax.networks import conv_decoder

    c, layers, out = 8, 5, 3
    net = conv_decoder((32, 24), out, channels=c, layers=layers, variant=variant, in_size=(4, 3))
    z = jnp.zeros(net.input_shape(32, 24))
    params = net.init(jax.random.key(0), z)["params"]
    if variant == "mli":
        expected = (layers - 1) * (9 * c * c + c * c + 3 * 2 * c) + 2 * c + c * out
    else:
        expected = (layers - 1) * (9 * c * c + c + 2 * c) + (9 * c * c + c + 2 * c) + c * out + out
    assert count_params(params) == expected
    y = net.apply({"params": params}, z + 0.1)
    assert y.shape == (32, 24, out)
    if variant == "mli":
        assert float(y.min()) > 0 and float(y.max()) < 1  # sigmoid head (need_sigmoid=True)
    assert net.variant == variant


def test_conv_decoder_upsampling_follows_pytorch():
    """nn.Upsample(size, mode='nearest') takes source index floor(i · in / out); bilinear uses half-pixel centres."""
    from dipjax.networks.conv_decoder import hidden_sizes, upsample_to

    x = jnp.broadcast_to(jnp.arange(4.0)[:, None, None], (4, 1, 1))
    near = upsample_to(x, (6, 1), "nearest")[:, 0, 0]
    np.testing.assert_array_equal(near, [0, 0, 1, 2, 2, 3])  # floor(i * 4/6) for i = 0..5
    lin = upsample_to(x, (8, 1), "bilinear")[:, 0, 0]
    src = np.clip((np.arange(8) + 0.5) * 4 / 8 - 0.5, 0, 3)  # PyTorch's source coordinate, clamped
    np.testing.assert_allclose(lin, np.interp(src, np.arange(4), np.arange(4.0)), atol=1e-6)
    # ceil(in · r^n), r = (out/in)^(1/(layers − 1)): r = 2 for 4 → 64; r = 12^(1/4) ≈ 1.861 for 4 → 48
    assert hidden_sizes((4, 4), (64, 48), 5) == [(8, 8), (16, 14), (32, 26), (64, 48)]
