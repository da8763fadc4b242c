"""Every method's per-task presets against the numbers in METHODS.md (written out here, independently of the
registry), and every method × task builds."""

import dataclasses

import pytest

from dipjax.methods import METHODS, build_method, default_steps
from dipjax.methods.registry import describe, resolve_preset
from dipjax.tasks import TASKS, task_config

SHAPE = (64, 64, 3)

#: (method, task, task options) -> expected settings (METHODS.md §0.2, §1, §2, §4, §5, §6, §7, §8b).
EXPECTED = [
    ("dip", "denoise", {}, dict(steps=3000, lr=0.01, input_noise_std=1 / 30, input_scale=0.1)),
    ("dip", "denoise", {"sigma": 50.0}, dict(steps=3000, input_noise_std=1 / 20)),
    ("dip", "sr", {"factor": 4}, dict(steps=2000, input_noise_std=0.03)),
    ("dip", "sr", {"factor": 8}, dict(steps=4000, input_noise_std=0.05)),
    ("dip", "inpaint", {}, dict(steps=5001, input_noise_std=0.03)),
    ("tv_dip", "sr", {"factor": 8}, dict(steps=4000, input_noise_std=0.05)),
    ("sg_dip", "denoise", {}, dict(steps=4000, lr_theta=3e-4, lr_z=0.1, lam=2.0, noise_scale=0.5, n_realizations=3,
                                   norm="l1", output_ema=0.95)),
    ("sg_dip", "ct", {}, dict(steps=10_000, lr_theta=1e-4, lr_z=0.1, lam=0.04, noise_scale=0.01, n_realizations=4,
                              output_ema=0.99, norm="euclidean_sq", reg_form="per_realization",
                              input_init="measurement", clip_norm=1.0, normalize_operator=True)),
    ("aseq_dip", "denoise", {}, dict(steps=4000, lr=1e-4, lam=1.0, inner_steps=2, z_update="last_forward")),
    ("aseq_dip", "inpaint", {}, dict(steps=400, lr=3e-4, lam=1.0, inner_steps=2, z_update="recompute")),
    ("aseq_dip", "deblur", {}, dict(steps=10_000, lr=1e-4, lam=5.0, inner_steps=2)),
    ("deep_decoder", "denoise", {}, dict(steps=1900, lr=0.01, input_noise_std=0.0)),
    ("deep_decoder", "inpaint", {}, dict(steps=40_000, lr=0.0025, input_noise_std=0.005, input_noise_decay=0.7,
                                         input_noise_decay_every=500)),
    ("conv_decoder", "denoise", {}, dict(steps=2500, lr=0.01, input_noise_std=0.0)),
    ("oes", "denoise", {}, dict(steps=40_000, mask_steps=60_000, sparsity=0.05, kl_weight=1e-9, temperature=0.2,
                                mask_lr=0.01, lr=0.01, prune="all")),
    ("dop", "denoise", {}, dict(steps=150_000, lr=1.0, lr_ratio=500.0, optimizer_kind="sgd", init_scale=1e-5,
                                input_noise_std=1 / 30)),
    ("drp", "denoise", {}, dict(steps=5000, lr=0.1, tv_weight=0.45, input_kind="normal", input_scale=0.1)),
    ("drp", "sr", {}, dict(steps=5000, lr=0.5, tv_weight=0.75)),
    ("drp", "inpaint", {}, dict(steps=5000, lr=0.05, tv_weight=0.01, input_kind="meshgrid")),
    ("deepred", "denoise", {}, dict(steps=6000, lr=0.008, beta=0.5, mu=0.5, input_noise_std=0.033, output="ema",
                                    output_ema=0.99, adaptive=True, denoiser_every=10)),
    ("deepred", "deblur", {}, dict(steps=30_000, lr=0.004, beta=0.02, mu=0.04, input_noise_std=0.01, output="admm")),
    ("deepred", "sr", {}, dict(steps=2000, lr=0.001, beta=0.05, mu=0.06, input_noise_std=0.02, output="admm")),
]

#: The networks the presets must build (METHODS.md): (method, task) -> checks on the Flax module's fields.
NETWORKS = [
    ("dip", "denoise", dict(down=(128,) * 5, skip=(4,) * 5, in_channels=32, upsample="bilinear")),
    ("aseq_dip", "denoise", dict(features=(64, 128, 128), weight_init="normal002")),
    ("aseq_dip", "inpaint", dict(down=(128,) * 5, upsample="nearest", in_channels=3)),
    ("deep_decoder", "denoise", dict(channels=(128,) * 5)),
    ("deep_decoder", "inpaint", dict(channels=(256,) * 5)),
    ("conv_decoder", "denoise", dict(variant="mli", channels=64, layers=6, in_size=(16, 16))),
    ("drp", "denoise", dict(down=(64,), skip=(4,), in_channels=3)),
    ("drp", "sr", dict(down=(128,), in_channels=1)),
    ("drp", "inpaint", dict(down=(128,), skip=(128,), in_channels=2)),
    ("oes", "denoise", dict(down=(16, 32, 64, 128, 128, 128), kernel_down=5, downsample="avg", upsample="nearest")),
]


@pytest.mark.parametrize("name, task, options, expected", EXPECTED, ids=lambda v: str(v) if isinstance(v, str) else "")
def test_preset_values_match_methods_md(name, task, options, expected):
    config = task_config(task, **options)
    method = build_method(name, config, SHAPE if name != "oes" else (128, 128, 3))
    for field, value in expected.items():
        got = default_steps(name, config) if field == "steps" else getattr(method, field)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, (field, got, value)


def test_deepred_sr_uses_the_stronger_denoiser():
    method = build_method("deepred", task_config("sr"), SHAPE)
    assert method.denoiser.sigma == pytest.approx(5 / 255)


@pytest.mark.parametrize("name, task, fields", NETWORKS, ids=lambda v: v if isinstance(v, str) else "")
def test_preset_networks(name, task, fields):
    net = build_method(name, task_config(task), SHAPE if name != "oes" else (128, 128, 3)).network
    for field, value in fields.items():
        assert getattr(net, field) == value, (field, getattr(net, field))


def test_every_method_builds_for_every_task_with_a_source_for_each_setting():
    for name in METHODS:
        for task, cls in TASKS.items():
            config = cls()
            method = build_method(name, config, (128, 128, 3))
            assert describe(method)["type"] == METHODS[name].method.__name__
            settings, sources = resolve_preset(name, config)
            assert sources and all(isinstance(s, str) and len(s) > 10 for s in sources)
            assert default_steps(name, config) > 0


def test_user_settings_override_presets_and_unknown_ones_are_refused():
    config = task_config("sr", factor=8)
    method = build_method("dip", config, SHAPE, lr=0.001, width=16)
    assert method.lr == 0.001 and method.input_noise_std == 0.05 and method.network.down == (16,) * 5
    with pytest.raises(ValueError, match="not a setting of dip"):
        build_method("dip", config, SHAPE, tv_weight=0.1)
    with pytest.raises(ValueError, match="width does not apply to oes"):
        build_method("oes", config, (128, 128, 3), width=8)
    with pytest.raises(ValueError, match="unknown method"):
        build_method("dip2", config, SHAPE)
    with pytest.raises(ValueError, match="lr must be positive"):
        build_method("dip", config, SHAPE, lr=-1.0)
    assert dataclasses.is_dataclass(method)
