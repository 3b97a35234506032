"""Low-level operations of StyleGAN2/3, written from the papers and NVIDIA's published definitions.

These conventions decide the numbers a trained checkpoint produces, so they are fixed:

- A FIR filter is applied as a true convolution (the filter is flipped first) unless `flip_filter`.
- Up-sampling by u puts each sample at index i*u and u-1 zeros after it, then pads (negative = crop),
  then filters with gain u*u (spread over the filter's dimensions); down-sampling by d filters, then
  keeps every d-th sample starting at the first.
- A weight convolution is a cross-correlation (PyTorch's conv2d) when `flip_weight`, else a true
  convolution. StyleGAN2's up-sampling layers use the true convolution; the others correlate.
- Padding lists are [x0, x1, y0, y1] (left, right, top, bottom).

Everything is plain PyTorch (CPU, CUDA, MPS), differentiable, and works in float16 and float32.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn.functional as F

Pad = Union[int, Sequence[int]]

def fp16_supported(device: torch.device) -> bool:
    """Layers a checkpoint marks float16 run in float16 on CUDA only; CPU and MPS keep float32."""
    return device.type == "cuda"


# ----------------------------------------------------------------------------------------- bias + act

# name -> (function, default gain). The gains keep the signal's magnitude (He et al.); lrelu uses alpha.
_ACTIVATIONS = {
    "linear": (lambda x, a: x, 1.0),
    "relu": (lambda x, a: F.relu(x), math.sqrt(2)),
    "lrelu": (lambda x, a: F.leaky_relu(x, a), math.sqrt(2)),
    "tanh": (lambda x, a: torch.tanh(x), 1.0),
    "sigmoid": (lambda x, a: torch.sigmoid(x), 1.0),
    "elu": (lambda x, a: F.elu(x), 1.0),
    "selu": (lambda x, a: F.selu(x), 1.0),
    "softplus": (lambda x, a: F.softplus(x), 1.0),
    "swish": (lambda x, a: torch.sigmoid(x) * x, math.sqrt(2)),
}


def activation_gain(act: str) -> float:
    return _ACTIVATIONS[act][1]


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear", alpha: float | None = None,
             gain: float | None = None, clamp: float | None = None, dim: int = 1) -> torch.Tensor:
    """x + b (broadcast along `dim`), then the activation, then * gain, then clamp to [-clamp, clamp]."""
    if act not in _ACTIVATIONS:
        raise ValueError(f"unknown activation '{act}'")
    fn, default_gain = _ACTIVATIONS[act]
    source = x
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    x = fn(x, 0.2 if alpha is None else float(alpha))
    gain = default_gain if gain is None else float(gain)
    # In place on our own intermediate when no gradient is needed: half the memory traffic on big maps.
    in_place = x is not source and not (torch.is_grad_enabled() and x.requires_grad)
    if gain != 1:
        x = x.mul_(gain) if in_place else x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp_(-clamp, clamp) if in_place else x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector to unit root-mean-square (the pixel norm applied to z and class embeddings)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ----------------------------------------------------------------------------------------- FIR filters


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    vx, vy = v
    return int(vx), int(vy)


def padding4(p: Pad) -> tuple[int, int, int, int]:
    """An int, [x, y] or [x0, x1, y0, y1] -> (x0, x1, y0, y1)."""
    if isinstance(p, int):
        return p, p, p, p
    p = [int(v) for v in p]
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"padding must have 1, 2 or 4 values, got {p}")


def setup_filter(f, normalize: bool = True, flip_filter: bool = False, gain: float = 1.0,
                 separable: bool | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """A FIR filter as a float32 tensor: 1D taps become their outer product (a 2D filter) unless the
    filter is long (8 taps or more) or `separable`; normalised to sum 1; `gain` spread over its dims."""
    f = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32, device=device)
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim not in (1, 2):
        raise ValueError("a FIR filter must be 1D or 2D")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter; a missing filter is 1 x 1."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[-1], f.shape[-2]


def _fir_depthwise(x: torch.Tensor, kernel: torch.Tensor, up: tuple[int, int], down: tuple[int, int],
                   pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Zero-insertion up-sampling, padding, correlation with `kernel` [kh, kw] on every channel, and
    decimation — computed without touching the inserted zeros (transposed conv) or the dropped samples
    (strided conv). Depthwise (groups = channels) convolutions are much faster on CPUs than one
    single-channel convolution over a batch of N*C."""
    c = x.shape[1]
    kh, kw = kernel.shape
    (ux, uy), (dx, dy) = up, down
    px0, px1, py0, py1 = pad
    weight = kernel.reshape(1, 1, kh, kw).expand(c, 1, kh, kw).contiguous()
    if x.device.type == "cpu" and c > 1:
        x = x.contiguous(memory_format=torch.channels_last)  # CPU depthwise kernels are 2-4x faster so
    if ux > 1 or uy > 1:
        # conv_transpose2d places sample i at i*u and adds the flipped kernel around it; the padding
        # then shifts this "full" result onto the zero-insert + pad + valid-correlation grid.
        x = F.conv_transpose2d(x, weight.flip([2, 3]), stride=(uy, ux), groups=c)
        x = F.pad(x, [px0 - kw + 1, px1 + ux - kw, py0 - kh + 1, py1 + uy - kh])
        if dx > 1 or dy > 1:
            x = x[:, :, ::dy, ::dx]
        return x
    if any(pad):
        x = F.pad(x, [px0, px1, py0, py1])
    return F.conv2d(x, weight, stride=(dy, dx), groups=c)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int | Sequence[int] = 1,
              down: int | Sequence[int] = 1, padding: Pad = 0, flip_filter: bool = False,
              gain: float = 1.0) -> torch.Tensor:
    """Up-sample (zero insertion), pad, FIR-filter and down-sample a batch of images [N, C, H, W].

    `f` is 2D [fh, fw], 1D [taps] (applied separably along x then y), or None (identity).
    """
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = padding4(padding)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    f = f.to(device=x.device, dtype=torch.float64 if f.dtype == torch.float64 else torch.float32)
    f = f * (gain ** (f.ndim / 2))
    if not flip_filter:  # conv2d correlates; flipping the filter makes it a true convolution
        f = f.flip(list(range(f.ndim)))
    f = f.to(x.dtype)
    if f.ndim == 2:
        return _fir_depthwise(x, f, (upx, upy), (downx, downy), (px0, px1, py0, py1))
    x = _fir_depthwise(x, f.reshape(1, -1), (upx, 1), (downx, 1), (px0, px1, 0, 0))
    return _fir_depthwise(x, f.reshape(-1, 1), (1, upy), (1, downy), (0, 0, py0, py1))


def upsample2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 2, padding: Pad = 0,
               flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Up-sample by `up` with the filter, keeping the image centred (output size = input * up)."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = padding4(padding)
    pad = [px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, flip_filter=flip_filter, gain=gain * up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor | None, down: int = 2, padding: Pad = 0,
                 flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Down-sample by `down` with the filter, keeping the image centred (output size = input / down)."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = padding4(padding)
    pad = [px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, gain=gain)


def filter2d(x: torch.Tensor, f: torch.Tensor | None, padding: Pad = 0, flip_filter: bool = False,
             gain: float = 1.0) -> torch.Tensor:
    """Filter without changing the size (the filter's centre is at (size - 1) // 2... rounded down)."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = padding4(padding)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain)


# ----------------------------------------------------------------------------------------- convolution


def _conv(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: int | Sequence[int] = 0, groups: int = 1,
          flip_weight: bool = True, transpose: bool = False) -> torch.Tensor:
    if not flip_weight:  # a true convolution: flip the kernel for PyTorch's correlation
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _resample_padding(f: torch.Tensor | None, up: int, down: int, padding: Pad) -> tuple[int, int, int, int]:
    """The padding of conv2d_resample grown by what keeps the image centred through the up/down filter."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = padding4(padding)
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    return px0, px1, py0, py1


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1,
                    padding: Pad = 0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False) -> torch.Tensor:
    """Convolution with optional FIR up-sampling before it and FIR down-sampling after it.

    Defined as: upfirdn2d(x, f, up, padding, gain=up**2) -> conv (valid) -> upfirdn2d(f, down), where the
    padding grows by what keeps the image centred; the cases below compute the same thing faster.
    """
    if up < 1 or down < 1:
        raise ValueError("up and down must be >= 1")
    out_ch, in_per_group, kh, kw = w.shape
    px0, px1, py0, py1 = _resample_padding(f, up, down, padding)

    # A 1x1 kernel commutes with the filter: resample on the side with fewer channels.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up * up, flip_filter=flip_filter)
    if down > 1 and up == 1:  # filter, then a strided convolution
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        # A transposed convolution does the zero insertion and the convolution at once; the filter
        # (with the remaining padding) follows.
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
            wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        # conv_transpose2d correlates with the flipped kernel, i.e. it convolves: flip for correlation.
        x = _conv(x, wt, stride=up, padding=[pyt, pxt], groups=groups, flip_weight=not flip_weight, transpose=True)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up,
                      flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    return conv2d_resample_reference(x, w, f, up, down, padding, groups, flip_weight, flip_filter)


def conv2d_resample_reference(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                              down: int = 1, padding: Pad = 0, groups: int = 1, flip_weight: bool = True,
                              flip_filter: bool = False) -> torch.Tensor:
    """The defining (slow) form of conv2d_resample: up-sample and pad, convolve, down-sample."""
    px0, px1, py0, py1 = _resample_padding(f, up, down, padding)
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up * up,
                  flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, down: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, flip_weight: bool = True,
                     fused_modconv: bool = True) -> torch.Tensor:
    """StyleGAN2's modulated convolution (paper, section 2.2): scale the kernel's input channels by the
    per-sample styles, then (demodulate) rescale each output channel to unit L2 norm (epsilon 1e-8).

    x [N, I, H, W], weight [O, I, k, k], styles [N, I], noise broadcastable to the output or None.
    `fused_modconv` runs one grouped convolution with per-sample kernels; otherwise the styles scale the
    activations and one shared convolution runs for the batch (the same result up to rounding).
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # Keep float16 in range; demodulation cancels both scales.
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, k, k]
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None  # [N, O]

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, in_ch, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, out_ch, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    if dcoefs is not None:
        w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    w = w.reshape(n * out_ch, in_ch, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=n,
                        flip_weight=flip_weight)
    x = x.reshape(n, out_ch, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


# ----------------------------------------------------------------------------------------- StyleGAN3


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                   b: torch.Tensor | None = None, up: int = 1, down: int = 1, padding: Pad = 0,
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False) -> torch.Tensor:
    """StyleGAN3's alias-free nonlinearity (Alias-Free GAN, section 3.2): add the bias, up-sample with
    `fu` (gain up**2) and the padding, apply leaky ReLU * gain and the clamp at the higher rate, then
    low-pass with `fd` and down-sample."""
    if b is not None:
        x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up * up, flip_filter=flip_filter)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)
