"""The building blocks against straightforward reference computations (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

from aigc_desktop.engines.stylegan import ops, stylegan3

torch.manual_seed(0)


def naive_upfirdn(x: torch.Tensor, f: torch.Tensor, up: int, down: int, pad, gain: float = 1.0,
                  flip: bool = False) -> np.ndarray:
    """Insert zeros, pad/crop, convolve (scipy, true convolution), keep every down-th sample."""
    x = x.numpy()
    n, c, h, w = x.shape
    px0, px1, py0, py1 = pad
    up_x = np.zeros((n, c, h * up, w * up))
    up_x[:, :, ::up, ::up] = x
    padded = np.pad(up_x, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    padded = padded[:, :, max(-py0, 0):padded.shape[2] - max(-py1, 0), max(-px0, 0):padded.shape[3] - max(-px1, 0)]
    f = f.numpy().astype(np.float64)
    f2 = (np.outer(f, f) if f.ndim == 1 else f) * gain
    if flip:
        f2 = f2[::-1, ::-1]
    out = np.stack([np.stack([scipy.signal.convolve2d(padded[i, j], f2, mode="valid") for j in range(c)])
                    for i in range(n)])
    return out[:, :, ::down, ::down]


FILTERS = {
    "sg2 [1,3,3,1]": ops.setup_filter([1, 3, 3, 1]).double(),
    "asymmetric 1d": torch.tensor([1.0, 2.0, 5.0, 1.0], dtype=torch.float64),
    "asymmetric 2d": torch.randn(5, 3, dtype=torch.float64),
    "long 1d": torch.randn(12, dtype=torch.float64),
}
CASES = [(1, 1, (1, 2, 0, 3)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (2, 2, (3, 0, -1, 2)),
         (4, 1, (-2, 5, 1, 1)), (1, 1, (-1, -1, 2, -2)), (2, 1, (11, 10, 11, 10))]


@pytest.mark.parametrize("fname", list(FILTERS))
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_matches_zero_insertion_and_direct_convolution(fname, flip):
    f = FILTERS[fname]
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    checked = 0
    for up, down, pad in CASES:
        fh, fw = (f.shape[0], f.shape[0]) if f.ndim == 1 else f.shape
        if 7 * up + pad[2] + pad[3] < fh or 9 * up + pad[0] + pad[1] < fw:
            continue  # the filter would not fit
        got = ops.upfirdn2d(x, f, up=up, down=down, padding=pad, gain=1.7, flip_filter=flip)
        want = naive_upfirdn(x, f, up, down, pad, gain=1.7, flip=flip)
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want, atol=1e-10)
        checked += 1
    assert checked >= 4


def test_upsample2d_against_direct_convolution_with_the_filter():
    """2x up-sampling of an image by the StyleGAN2 filter: every output pixel is a weighted sum of the
    input pixels with weights read from the (4x) filter, centred so the image does not shift."""
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    got = ops.upsample2d(x, f)
    assert got.shape == (1, 2, 10, 12)
    k = (f * 4).numpy()
    want = np.zeros((1, 2, 10, 12))
    for oy in range(10):
        for ox in range(12):
            for iy in range(5):
                for ix in range(6):
                    # output o sees input i at zero-inserted position 2*i; filter tap = 2*i - o + 2 (pad 2)
                    ty, tx = 2 * iy - oy + 2, 2 * ix - ox + 2
                    if 0 <= ty < 4 and 0 <= tx < 4:
                        want[0, :, oy, ox] += k[3 - ty, 3 - tx] * x[0, :, iy, ix].numpy()
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    # A constant image stays constant away from the borders (the filter's gain is exactly up**2).
    flat = ops.upsample2d(torch.ones(1, 1, 8, 8, dtype=torch.float64), f)
    assert torch.allclose(flat[0, 0, 2:-2, 2:-2], torch.ones(12, 12, dtype=torch.float64))


def test_downsample2d_and_filter2d_keep_constants_and_sizes():
    f = ops.setup_filter([1, 3, 3, 1])
    x = torch.ones(1, 1, 16, 16)
    assert ops.downsample2d(x, f).shape == (1, 1, 8, 8)
    assert torch.allclose(ops.downsample2d(x, f)[0, 0, 1:-1, 1:-1], torch.ones(6, 6))
    assert ops.filter2d(x, f).shape == (1, 1, 16, 16)


def test_setup_filter():
    f = ops.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and abs(float(f.sum()) - 1) < 1e-6
    assert ops.setup_filter(list(range(1, 9))).shape == (8,)  # long filters stay separable
    assert ops.setup_filter([1, 2, 1], separable=True).shape == (3,)
    assert abs(float(ops.setup_filter([1, 3, 3, 1], gain=4).sum()) - 4) < 1e-6


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("flip_weight", [True, False])
def test_conv2d_resample_fast_paths_equal_the_definition(k, up, down, groups, flip_weight):
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, k, k, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    for pad in (k // 2, 0, [1, 0, 2, 1]):
        got = ops.conv2d_resample(x, w, f, up=up, down=down, padding=pad, groups=groups, flip_weight=flip_weight)
        want = ops.conv2d_resample_reference(x, w, f, up=up, down=down, padding=pad, groups=groups,
                                             flip_weight=flip_weight)
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-10)


def test_conv2d_resample_definition_convolves_or_correlates():
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    w = torch.randn(1, 1, 3, 3, dtype=torch.float64)
    corr = ops.conv2d_resample(x, w, padding=1, flip_weight=True)
    conv = ops.conv2d_resample(x, w, padding=1, flip_weight=False)
    assert torch.allclose(corr, F.conv2d(x, w, padding=1))
    np.testing.assert_allclose(conv[0, 0].numpy(), scipy.signal.convolve2d(x[0, 0].numpy(), w[0, 0].numpy(),
                                                                          mode="same"), atol=1e-12)


def explicit_modulated_conv(x, weight, styles, up, demodulate, flip_weight, f, padding):
    """Per-sample: scale the kernel's input channels by the styles, normalise each output channel's kernel
    to unit L2 norm (epsilon 1e-8), run the ordinary (resampling) convolution for that sample alone."""
    outs = []
    for i in range(x.shape[0]):
        w = weight * styles[i].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / torch.sqrt(w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        outs.append(ops.conv2d_resample_reference(x[i:i + 1], w, f, up=up, padding=padding, flip_weight=flip_weight))
    return torch.cat(outs)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_against_explicit_per_sample_conv(fused, up, demodulate):
    x = torch.randn(3, 5, 8, 8, dtype=torch.float64)
    weight = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    styles = torch.randn(3, 5, dtype=torch.float64) + 1
    f = ops.setup_filter([1, 3, 3, 1]).double()
    noise = torch.randn(1, 1, 8 * up, 8 * up, dtype=torch.float64)
    got = ops.modulated_conv2d(x, weight, styles, noise=noise, up=up, padding=1, resample_filter=f,
                               demodulate=demodulate, flip_weight=(up == 1), fused_modconv=fused)
    want = explicit_modulated_conv(x, weight, styles, up, demodulate, up == 1, f, 1) + noise
    assert got.shape == (3, 4, 8 * up, 8 * up)
    assert torch.allclose(got, want, atol=1e-9)
    if demodulate:  # demodulated output does not depend on the scale of the styles
        again = ops.modulated_conv2d(x, weight, styles * 7, up=up, padding=1, resample_filter=f,
                                     flip_weight=(up == 1), fused_modconv=fused)
        assert torch.allclose(again, got - noise, atol=1e-6)


def test_stylegan3_modulated_conv_against_explicit_computation():
    x = torch.randn(2, 5, 9, 9, dtype=torch.float64)
    w = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    s = torch.randn(2, 5, dtype=torch.float64)
    gain = torch.tensor(0.37, dtype=torch.float64)
    got = stylegan3.modulated_conv2d(x, w, s, demodulate=True, padding=2, input_gain=gain)
    outs = []
    for i in range(2):
        wi = w / w.square().mean(dim=[1, 2, 3], keepdim=True).sqrt()  # rms-normalised weights
        si = s[i] / s.square().mean().sqrt()  # styles normalised over the whole batch
        wi = wi * si.reshape(1, -1, 1, 1)
        wi = wi / torch.sqrt(wi.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        outs.append(F.conv2d(x[i:i + 1], wi * gain, padding=2))
    assert torch.allclose(got, torch.cat(outs), atol=1e-10)
    rgb = stylegan3.modulated_conv2d(x, w[:, :, :1, :1], s, demodulate=False)
    want = torch.cat([F.conv2d(x[i:i + 1], w[:, :, :1, :1] * s[i].reshape(1, -1, 1, 1)) for i in range(2)])
    assert torch.allclose(rgb, want, atol=1e-10)


def test_bias_act():
    x = torch.tensor([[-2.0, 0.5, 300.0]])
    b = torch.tensor([1.0])
    y = ops.bias_act(x.T.reshape(1, 1, 3), b, act="lrelu", clamp=256, dim=1)  # bias per channel
    expected = torch.tensor([-0.2 * math.sqrt(2), 1.5 * math.sqrt(2), 256.0])
    assert torch.allclose(y.flatten(), expected)
    assert torch.equal(ops.bias_act(x), x)  # linear, gain 1, no clamp
    with pytest.raises(ValueError):
        ops.bias_act(x, act="nope")


def test_filtered_lrelu_is_bias_upsample_lrelu_clamp_downsample():
    x = torch.randn(1, 3, 10, 10, dtype=torch.float64) * 3
    fu = torch.randn(12, dtype=torch.float64)
    fd = torch.randn(12, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    got = ops.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[11, 10, 11, 10], clamp=1.5)
    y = naive_upfirdn(x + b.reshape(1, 3, 1, 1), fu, 2, 1, (11, 10, 11, 10), gain=4)
    y = np.clip(np.where(y >= 0, y, 0.2 * y) * math.sqrt(2), -1.5, 1.5)
    want = naive_upfirdn(torch.from_numpy(y), fd, 1, 2, (0, 0, 0, 0))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-9)


def test_normalize_2nd_moment():
    z = torch.randn(4, 16) * 5
    n = ops.normalize_2nd_moment(z)
    assert torch.allclose(n.square().mean(dim=1), torch.ones(4), atol=1e-5)


def test_lowpass_filter_design():
    sep = stylegan3.design_lowpass_filter(12, cutoff=10, width=20, fs=64)
    assert sep.shape == (12,) and abs(float(sep.sum()) - 1) < 1e-5
    rad = stylegan3.design_lowpass_filter(12, cutoff=10, width=20, fs=64, radial=True)
    assert rad.shape == (12, 12) and abs(float(rad.sum()) - 1) < 1e-5
    assert torch.allclose(rad, rad.T) and torch.allclose(rad, rad.flip(0))
    assert stylegan3.design_lowpass_filter(1, 10, 20, 64) is None
