"""StyleGAN3 synthesis network (Karras et al. 2021, "Alias-Free Generative Adversarial Networks").

The signal is treated as a band-limited continuous image sampled at a known rate. The input is a set of
Fourier features whose frequencies and phases are rotated and translated per sample (and by the
user-given `transform`); each following layer is a modulated convolution and a "filtered leaky ReLU":
up-sample with a low-pass filter, apply the nonlinearity at the higher rate, low-pass again and
down-sample (paper, section 3). Cutoffs, stopbands, sampling rates and sizes follow the geometric
schedule of section 3.2 / appendix F; the last two layers are critically sampled. Config T uses 3x3
convolutions and separable Kaiser filters, config R 1x1 convolutions and radially symmetric (jinc)
down-sampling filters. A checkpoint's own filters (stored buffers) are what a loaded model uses.

Names match NVIDIA's state dicts: synthesis.input.{weight,affine.*,transform,freqs,phases},
synthesis.L{i}_{size}_{channels}.{weight,bias,magnitude_ema,up_filter,down_filter,affine.*}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from aigc_desktop.engines.stylegan.mapping import FullyConnectedLayer
from aigc_desktop.engines.stylegan import ops
from aigc_desktop.engines.stylegan.ops import filtered_lrelu


def modulated_conv2d(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor, demodulate: bool = True, padding: int = 0,
                     input_gain: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN3's modulated convolution: with demodulation, weights and styles are first normalised by
    their root mean square (weights per output channel, styles over the whole tensor) for fp16 range;
    after demodulation each input channel is scaled by `input_gain` (1/sqrt of the tracked magnitude)."""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = w.shape
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    w = w.unsqueeze(0) * s.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, out_ch, 1, 1, 1)
    if input_gain is not None:
        w = w * input_gain.expand(n, in_ch).reshape(n, 1, in_ch, 1, 1)
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    x = F.conv2d(x, w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype), padding=padding, groups=n)
    return x.reshape(n, out_ch, *x.shape[2:])


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> torch.Tensor | None:
    """A Kaiser-windowed low-pass filter: 1D separable (scipy's firwin), or a 2D radially symmetric jinc
    filter with the same window; None for a single tap (identity)."""
    import scipy.signal
    import scipy.special

    if numtaps < 1:
        raise ValueError("numtaps must be >= 1")
    if numtaps == 1:
        return None
    if not radial:
        f = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(f, dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(r > 0, scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r), cutoff)  # jinc; limit at 0
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    f = f / np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the schedule: what it reads and what it produces."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float


@dataclass(frozen=True)
class Schedule:
    input_channels: int
    input_size: int
    input_sampling_rate: float
    input_bandwidth: float
    layers: tuple[LayerSpec, ...]


def layer_schedule(img_resolution: int, img_channels: int, channel_base: int = 32768, channel_max: int = 512,
                   num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                   first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                   num_fp16_res: int = 4) -> Schedule:
    """Cutoffs and stopbands grow geometrically from the first layer to the last critical ones; the
    sampling rate is the smallest power of two >= 2 * stopband (at most the output resolution); the
    transition half-width fills the gap to the stopband (or to Nyquist); channels fall as the cutoff
    rises; every layer but the last two carries a margin of `margin_size` pixels on each side."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        spec = LayerSpec(
            name=f"L{idx}_{int(sizes[idx])}_{int(channels[idx])}",
            is_torgb=idx == num_layers,
            is_critically_sampled=idx >= num_layers - num_critical,
            use_fp16=bool(sampling_rates[idx] * (2 ** num_fp16_res) > img_resolution),
            in_channels=int(channels[prev]), out_channels=int(channels[idx]),
            in_size=int(sizes[prev]), out_size=int(sizes[idx]),
            in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]))
        layers.append(spec)
    return Schedule(input_channels=int(channels[0]), input_size=int(sizes[0]),
                    input_sampling_rate=float(sampling_rates[0]), input_bandwidth=float(cutoffs[0]),
                    layers=tuple(layers))


class SynthesisInput(torch.nn.Module):
    """Fourier features: sin(2 pi (f . x + phase)) on a `size` grid sampled at `sampling_rate`, with the
    frequencies rotated and translated by an affine function of w (and by `transform`), then mixed by a
    learned channel matrix."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = int(size)
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)
        # Frequencies spread over a disc of radius `bandwidth`, random phases (replaced by a checkpoint's).
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))  # inverse of a user transform of the image
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        n = w.shape[0]
        user = self.transform if transform is None else transform.to(self.transform)
        transforms = user.unsqueeze(0) if user.ndim == 2 else user  # [N or 1, 3, 3]
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0)  # [1, C]

        # w -> (cos, sin, tx, ty): a rotation (normalised) and a translation of the image.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        rot = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])
        rot[:, 0, 0] = t[:, 0]
        rot[:, 0, 1] = -t[:, 1]
        rot[:, 1, 0] = t[:, 1]
        rot[:, 1, 1] = t[:, 0]
        shift = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])
        shift[:, 0, 2] = -t[:, 2]
        shift[:, 1, 2] = -t[:, 3]
        transforms = rot @ shift @ transforms  # rotate, then translate, then the user transform

        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # Fade out frequencies that the user transform pushed past the band (towards Nyquist).
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Pixel centres of a size x size grid, in units where the sampling rate is `sampling_rate`.
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size / self.sampling_rate
        theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)  # [1, H, W, 2]

        x = torch.einsum("bhwk,nck->nhwc", grid, freqs)  # f . x for every pixel and channel
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)  # [N, C, H, W]

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


class SynthesisLayer(torch.nn.Module):
    def __init__(self, w_dim: int, spec: LayerSpec, conv_kernel: int = 3, filter_size: int = 6,
                 lrelu_upsampling: int = 2, use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.spec = spec
        self.is_torgb = spec.is_torgb
        self.use_fp16 = spec.use_fp16
        self.in_channels = spec.in_channels
        self.out_channels = spec.out_channels
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        self.conv_kernel = 1 if spec.is_torgb else conv_kernel

        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([spec.out_channels, spec.in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # The nonlinearity runs at `lrelu_upsampling` times the higher of the two rates (not for to-RGB).
        tmp_rate = max(spec.in_sampling_rate, spec.out_sampling_rate) * (1 if spec.is_torgb else lrelu_upsampling)
        self.up_factor = int(np.rint(tmp_rate / spec.in_sampling_rate))
        self.down_factor = int(np.rint(tmp_rate / spec.out_sampling_rate))
        if spec.in_sampling_rate * self.up_factor != tmp_rate or spec.out_sampling_rate * self.down_factor != tmp_rate:
            raise ValueError(f"{spec.name}: sampling rates are not integer multiples")
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not spec.is_torgb else 1
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not spec.is_torgb else 1
        self.down_radial = use_radial_filters and not spec.is_critically_sampled
        self.register_buffer("up_filter", design_lowpass_filter(
            self.up_taps, spec.in_cutoff, spec.in_half_width * 2, tmp_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            self.down_taps, spec.out_cutoff, spec.out_half_width * 2, tmp_rate, radial=self.down_radial))

        # Padding so that the output has out_size samples, centred as the input was (appendix C.3: the
        # samples sit at pixel centres, hence the shift by up_factor / 2).
        pad_total = (spec.out_size - 1) * self.down_factor + 1  # output size before down-sampling
        pad_total -= (spec.in_size + self.conv_kernel - 1) * self.up_factor  # input size after up-sampling
        pad_total += self.up_taps + self.down_taps - 2  # what the two filters take away
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo), int(pad_hi), int(pad_lo), int(pad_hi)]

    def forward(self, x: torch.Tensor, w: torch.Tensor, force_fp32: bool = False, update_emas: bool = False,
                **_unused) -> torch.Tensor:
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel ** 2))
        dtype = torch.float16 if (self.use_fp16 and not force_fp32 and ops.fp16_supported(x.device)) else torch.float32
        x = modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=input_gain)
        gain = 1 if self.is_torgb else np.sqrt(2)
        slope = 1 if self.is_torgb else 0.2
        return filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype), up=self.up_factor,
                              down=self.down_factor, padding=self.padding, gain=gain, slope=slope,
                              clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        s = self.spec
        return (f"is_torgb={s.is_torgb}, in={s.in_channels}x{s.in_size}@{s.in_sampling_rate}, "
                f"out={s.out_channels}x{s.out_size}@{s.out_sampling_rate}, "
                f"up={self.up_factor}, down={self.down_factor}")


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_layers + 2, w_dim] -> image [N, img_channels, R, R] (float32, about [-1, 1])."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 4, **layer_kwargs) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_ws = num_layers + 2
        self.num_layers = num_layers
        self.output_scale = output_scale
        self.schedule = layer_schedule(img_resolution, img_channels, channel_base, channel_max, num_layers,
                                       num_critical, first_cutoff, first_stopband, last_stopband_rel,
                                       margin_size, num_fp16_res)
        sch = self.schedule
        self.input = SynthesisInput(w_dim, sch.input_channels, sch.input_size, sch.input_sampling_rate,
                                    sch.input_bandwidth)
        self.layer_names = []
        for spec in sch.layers:
            setattr(self, spec.name, SynthesisLayer(w_dim, spec, **layer_kwargs))
            self.layer_names.append(spec.name)

    def forward(self, ws: torch.Tensor, force_fp32: bool = False, update_emas: bool = False,
                transform: torch.Tensor | None = None, **_unused) -> torch.Tensor:
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0], transform=transform)
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, force_fp32=force_fp32, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}")


def make_transform(translate: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> np.ndarray:
    """The image transform that NVIDIA's gen_images.py and visualizer offer: rotate by `angle` degrees and
    translate (in units of half the image); the input layer takes its inverse."""
    m = np.eye(3)
    s, c = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    m[0, 0], m[0, 1], m[0, 2] = c, s, translate[0]
    m[1, 0], m[1, 1], m[1, 2] = -s, c, translate[1]
    return m


def input_transform(translate: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> torch.Tensor:
    return torch.from_numpy(np.linalg.inv(make_transform(translate, angle))).to(torch.float32)
