"""Properties of the batched DSA augmentation (labelworth.augment, docs/method.md §4.1)."""

from __future__ import annotations

import math

import pytest
import torch

from labelworth.augment import (
    DSA_OPS,
    apply_op,
    choose_op,
    crop_shift_limit,
    cutout_side,
    draw_params,
    dsa_augment,
    parse_strategy,
)
from labelworth.errors import LabelworthError

FULL = "color_crop_cutout_flip_scale_rotate"
NO_FLIP = "color_crop_cutout_scale_rotate"

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(batch=4, channels=3, size=32, seed=0, dtype=torch.float32, device="cpu"):
    return torch.randn(batch, channels, size, size, generator=gen(seed), dtype=dtype).to(device)


# --------------------------------------------------------------------------------------------------
# Strategy parsing and op choice


def test_parse_strategy():
    assert parse_strategy(FULL) == DSA_OPS
    assert parse_strategy("flip") == ("flip",)
    assert parse_strategy(NO_FLIP) == ("color", "crop", "cutout", "scale", "rotate")
    for bad in ("", "color_blur", "color__crop", "crop_crop", "Color"):
        with pytest.raises(LabelworthError):
            parse_strategy(bad)


def test_choose_op_hits_every_op_and_never_flip_when_absent():
    g = gen(0)
    full = {choose_op(DSA_OPS, g) for _ in range(300)}
    assert full == set(DSA_OPS)
    no_flip_ops = parse_strategy(NO_FLIP)
    chosen = [choose_op(no_flip_ops, g) for _ in range(300)]
    assert "flip" not in chosen and set(chosen) == set(no_flip_ops)


def test_dsa_augment_is_choose_then_draw_then_apply():
    x = images()
    for seed in range(8):
        g = gen(seed)
        op = choose_op(DSA_OPS, g)
        expected = apply_op(op, x, draw_params(op, 4, 32, g, shared=False))
        assert torch.equal(dsa_augment(x, FULL, gen(seed)), expected)


def _mirrored(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per sample: is `out` closer (by centred correlation) to the mirror of `x` than to `x`?"""

    def corr(a, b):
        a = a - a.mean(dim=(1, 2, 3), keepdim=True)
        b = b - b.mean(dim=(1, 2, 3), keepdim=True)
        return (a * b).sum(dim=(1, 2, 3))

    return corr(out, x.flip(-1)) > corr(out, x)


def test_no_flip_strategy_never_mirrors():
    # Left half bright, right half dark: no op but flip can make an image look more like its mirror.
    x = torch.zeros(8, 1, 28, 28)
    x[..., :14] = 1.0
    for seed in range(40):
        assert not _mirrored(dsa_augment(x, NO_FLIP, gen(seed)), x).any()
    assert any(_mirrored(dsa_augment(x, "flip", gen(seed)), x).any() for seed in range(5))


# --------------------------------------------------------------------------------------------------
# Every op: shape, dtype, gradient, device


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", DSA_OPS)
@pytest.mark.parametrize("shape", [(4, 3, 32, 32), (3, 1, 28, 28)])
def test_op_keeps_shape_dtype_and_is_differentiable(op, shape, device):
    b, c, h, _ = shape
    x = torch.randn(*shape, generator=gen(1)).to(device).requires_grad_(True)
    params = draw_params(op, b, h, gen(2), shared=False)
    assert all(v.device.type == "cpu" and v.shape[0] == b for v in params.values())
    out = apply_op(op, x, params)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("op", DSA_OPS)
def test_op_keeps_float64(op):
    x = images(dtype=torch.float64)
    out = apply_op(op, x, draw_params(op, 4, 32, gen(3), shared=False))
    assert out.dtype == torch.float64


# --------------------------------------------------------------------------------------------------
# Siamese property and repeatability


@pytest.mark.parametrize("op", DSA_OPS)
def test_shared_is_siamese_across_batches(op):
    a, b = images(batch=3, seed=1), images(batch=5, seed=2)
    for seed in range(5):
        joint = dsa_augment(torch.cat([a, b]), op, gen(seed), shared=True)
        apart = torch.cat([dsa_augment(a, op, gen(seed), shared=True), dsa_augment(b, op, gen(seed), shared=True)])
        torch.testing.assert_close(joint, apart, rtol=0, atol=1e-6)


def test_shared_params_are_one_draw_independent_of_batch_size():
    for op in DSA_OPS:
        small = draw_params(op, 2, 32, gen(7), shared=True)
        large = draw_params(op, 9, 32, gen(7), shared=True)
        for name in small:
            assert torch.equal(small[name], large[name][:2])
            assert (large[name] == large[name][0]).all()


@pytest.mark.parametrize("shared", [False, True])
def test_same_seed_repeats_and_different_seeds_differ(shared):
    x = images(batch=6)
    for seed in range(6):
        assert torch.equal(dsa_augment(x, FULL, gen(seed), shared), dsa_augment(x, FULL, gen(seed), shared))
    outs = [dsa_augment(x, FULL, gen(seed), shared) for seed in range(6)]
    assert any(not torch.equal(outs[0], other) for other in outs[1:])


def test_unshared_params_vary_across_samples():
    params = draw_params("rotate", 16, 32, gen(0), shared=False)
    assert params["angle"].unique().numel() > 1


# --------------------------------------------------------------------------------------------------
# Exact behaviour of each op


def test_flip_all_true_is_mirror_and_all_false_is_identity():
    x = images()
    assert torch.equal(apply_op("flip", x, {"flip": torch.ones(4, dtype=torch.bool)}), x.flip(-1))
    assert torch.equal(apply_op("flip", x, {"flip": torch.zeros(4, dtype=torch.bool)}), x)
    mixed = apply_op("flip", x, {"flip": torch.tensor([True, False, True, False])})
    assert torch.equal(mixed[0], x[0].flip(-1)) and torch.equal(mixed[1], x[1])


@pytest.mark.parametrize("dy,dx", [(3, -2), (-4, 4), (0, 1), (0, 0)])
def test_crop_moves_by_exact_shift_and_zero_fills(dy, dx):
    x = images(batch=2, size=32) + 10.0  # no zeros in the input
    out = apply_op("crop", x, {"dy": torch.tensor([dy, 0]), "dx": torch.tensor([dx, 0])})
    h = w = 32
    expected = torch.zeros_like(x[0])
    expected[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[0][
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    assert torch.equal(out[0], expected)
    assert int((out[0] == 0).sum()) == 3 * (h * w - (h - abs(dy)) * (w - abs(dx)))
    assert torch.equal(out[1], x[1])


def test_cutout_zeroes_exactly_an_interior_square():
    x = images(batch=2, size=32) + 10.0
    side = cutout_side(32)
    assert side == 16 and cutout_side(28) == 14 and cutout_side(64) == 32
    out = apply_op("cutout", x, {"cy": torch.tensor([12, 20]), "cx": torch.tensor([17, 16])})
    for i, (cy, cx) in enumerate([(12, 17), (20, 16)]):
        zero = out[i] == 0
        assert int(zero.sum()) == 3 * side * side
        top, left = cy - side // 2, cx - side // 2
        assert zero[:, top : top + side, left : left + side].all()
        mask = torch.ones(32, 32, dtype=torch.bool)
        mask[top : top + side, left : left + side] = False
        assert torch.equal(out[i][:, mask], x[i][:, mask])


def test_cutout_is_clipped_at_the_border():
    x = images(batch=1, size=32) + 10.0
    out = apply_op("cutout", x, {"cy": torch.tensor([0]), "cx": torch.tensor([32])})
    zero = out[0, 0] == 0
    assert int(zero.sum()) == 8 * 8 and zero[:8, 24:].all()


def test_scale_one_and_rotate_zero_are_identity():
    # Exact up to float32 rounding of the sampling grid (about 1e-6 of a pixel times the neighbour step).
    x = images()
    torch.testing.assert_close(
        apply_op("scale", x, {"sx": torch.ones(4), "sy": torch.ones(4)}), x, rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(apply_op("rotate", x, {"angle": torch.zeros(4)}), x, rtol=1e-5, atol=1e-5)
    x64 = images(dtype=torch.float64)
    torch.testing.assert_close(
        apply_op("scale", x64, {"sx": torch.ones(4), "sy": torch.ones(4)}), x64, rtol=0, atol=1e-10
    )


def test_rotate_keeps_centre_and_90_degrees_is_rot90():
    x = images(batch=2, size=31)
    small = apply_op("rotate", x, {"angle": torch.full((2,), math.radians(7.0))})
    torch.testing.assert_close(small[..., 15, 15], x[..., 15, 15], rtol=0, atol=1e-5)
    quarter = apply_op("rotate", x, {"angle": torch.full((2,), math.pi / 2)})
    torch.testing.assert_close(quarter, torch.rot90(x, 1, dims=(-2, -1)), rtol=0, atol=1e-4)


def test_scale_factors_shrink_or_enlarge_about_the_centre():
    # A centred bright square: sampling coordinates scaled by 1.2 shrink it, by 1/1.2 enlarge it.
    x = torch.zeros(2, 1, 33, 33)
    x[..., 8:25, 8:25] = 1.0
    out = apply_op("scale", x, {"sx": torch.tensor([1.2, 1 / 1.2]), "sy": torch.tensor([1.2, 1 / 1.2])})
    assert out[0].sum() < x[0].sum() < out[1].sum()
    torch.testing.assert_close(out[..., 16, 16], x[..., 16, 16], rtol=0, atol=1e-6)


def test_color_brightness_shifts_each_mean_by_u_minus_half():
    x = images()
    u = torch.tensor([0.0, 0.3, 0.8, 1.0])
    out = apply_op("color", x, {"brightness": u, "saturation": torch.full((4,), 0.5), "contrast": torch.full((4,), 0.5)})
    torch.testing.assert_close(out - x, (u - 0.5).view(-1, 1, 1, 1).expand_as(x), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3)), u - 0.5, rtol=0, atol=1e-5)


def test_color_contrast_preserves_mean_and_scales_deviation():
    x = images()
    u = torch.tensor([0.0, 0.25, 0.6, 1.0])
    half = torch.full((4,), 0.5)
    out = apply_op("color", x, {"brightness": half, "saturation": half, "contrast": u})
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), rtol=0, atol=1e-5)
    dev_in = x - x.mean(dim=(1, 2, 3), keepdim=True)
    dev_out = out - out.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(dev_out, dev_in * (u + 0.5).view(-1, 1, 1, 1), rtol=0, atol=1e-5)


def test_color_saturation_scales_chroma_and_is_identity_for_grey():
    x = images()
    half = torch.full((4,), 0.5)
    u = torch.tensor([0.0, 0.25, 0.75, 1.0])
    out = apply_op("color", x, {"brightness": half, "saturation": u, "contrast": half})
    torch.testing.assert_close(out.mean(dim=1), x.mean(dim=1), rtol=0, atol=1e-5)
    torch.testing.assert_close(
        out - out.mean(dim=1, keepdim=True), (x - x.mean(dim=1, keepdim=True)) * (2 * u).view(-1, 1, 1, 1),
        rtol=0, atol=1e-5,
    )
    grey = images(channels=1, size=28)
    torch.testing.assert_close(
        apply_op("color", grey, {"brightness": half, "saturation": u, "contrast": half}), grey, rtol=0, atol=1e-6
    )


# --------------------------------------------------------------------------------------------------
# Parameter ranges


@pytest.mark.parametrize("size,limit", [(28, 4), (32, 4), (64, 8)])
def test_crop_shifts_within_limit_and_cover_both_signs(size, limit):
    assert crop_shift_limit(size) == limit
    p = draw_params("crop", 2000, size, gen(0), shared=False)
    for shift in (p["dy"], p["dx"]):
        assert shift.dtype == torch.int64
        assert shift.min() == -limit and shift.max() == limit
        assert (shift < 0).any() and (shift > 0).any()
    assert not torch.equal(p["dy"], p["dx"])


def test_scale_rotate_flip_color_cutout_ranges():
    n = 4000
    scale = draw_params("scale", n, 32, gen(0), shared=False)
    for f in (scale["sx"], scale["sy"]):
        assert f.min() >= 1 / 1.2 and f.max() <= 1.2 and f.min() < 0.85 and f.max() > 1.18
    assert not torch.equal(scale["sx"], scale["sy"])
    angle = draw_params("rotate", n, 32, gen(0), shared=False)["angle"]
    limit = math.radians(15.0)
    assert angle.abs().max() <= limit + 1e-7 and angle.min() < -0.9 * limit and angle.max() > 0.9 * limit
    flips = draw_params("flip", n, 32, gen(0), shared=False)["flip"]
    assert flips.dtype == torch.bool and 0.45 < flips.float().mean() < 0.55
    col = draw_params("color", n, 32, gen(0), shared=False)
    for u in col.values():
        assert u.min() >= 0 and u.max() < 1
    assert not torch.equal(col["brightness"], col["saturation"])
    cut = draw_params("cutout", n, 32, gen(0), shared=False)
    for c in (cut["cy"], cut["cx"]):  # even side 16: the reference draws centres in [0, 32]
        assert c.min() == 0 and c.max() == 32
    cut28 = draw_params("cutout", n, 28, gen(0), shared=False)  # side 14, also even
    assert cut28["cy"].max() == 28


# --------------------------------------------------------------------------------------------------
# Bad input and speed


def test_bad_input_is_a_labelworth_error():
    x = images()
    with pytest.raises(LabelworthError):
        dsa_augment(x, "color_warp", gen(0))
    with pytest.raises(LabelworthError):
        dsa_augment(x[0], "flip", gen(0))
    with pytest.raises(LabelworthError):
        dsa_augment(x[..., :30], "flip", gen(0))
    with pytest.raises(LabelworthError):
        draw_params("warp", 4, 32, gen(0), shared=False)
    with pytest.raises(LabelworthError):
        apply_op("flip", x, {"flip": torch.ones(3, dtype=torch.bool)})


def test_large_batch_smoke():
    x = torch.rand(256, 1, 28, 28)
    for seed in range(12):
        out = dsa_augment(x, NO_FLIP, gen(seed))
        assert out.shape == x.shape and torch.isfinite(out).all()
