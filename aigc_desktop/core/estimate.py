"""How much memory and time a job will take, before it starts (no torch, no Qt: reads only file headers).

    est = estimate(spec, device_info, measured_step_s=None, measured_at=None)
    est.memory_bytes, est.seconds, est.warnings      # warnings: one line each, empty when it looks fine

The window warns with these lines and lets the user choose before a job runs. The figures catch the
mistakes that matter (a 4096x4096 image on a CPU, a batch that cannot fit in the GPU), not the last 10%:

- weights: the parameter count from the safetensors headers (other formats: file size / 4 bytes) times
  the bytes per parameter the engine will run them at (fp16 on CUDA, fp32 on CPU, as the engines choose);
- UNet activations: ~250 values per latent position per base channel for each CFG half, and the VAE
  decode ~24 values per output pixel per decoder channel. Calibrated on SD 1.5 at 512x512 fp16 (about 1.3 GB
  of UNet activations, about 1.6 GB for the decode, 3.5 GB peak with the weights, as commonly measured);
  models with narrower UNets (the bundled emoji model, tests' tiny ones) scale with their channel widths;
- time: a measured step time (the engine reports one after a job: EngineClient.measured_step) scaled to
  the new size and batch, else a compute estimate: ~400 GFLOP per UNet pass of SD 1.5 at 64x64 latents,
  scaled by parameter count and by positions (with a quadratic attention share), over the device's rate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigc_desktop.core.safe_io import human_bytes

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")
SD_BASE_CHANNELS = 320  # SD 1.x / 2.x / SDXL UNet block_out_channels[0]
SD_VAE_CHANNELS = 128  # the decoder's full-resolution width
SD_UNET_PARAMS = 860e6
UNET_VALUES_PER_POSITION_CHANNEL = 250
VAE_VALUES_PER_PIXEL_CHANNEL = 24
SD_PASS_FLOPS = 400e9  # one UNet pass of one image of SD 1.5 at 64x64 latents
ATTENTION_POSITIONS = 16384  # attention's quadratic share equals the linear part at this many positions
CPU_FLOPS_PER_CORE = 25e9  # what torch reaches per core on fp32 convolutions (AVX2 class)
GPU_FLOPS = {"cuda": 25e12, "mps": 5e12}
OVERHEAD_BYTES = {"cuda": 400 << 20, "cpu": 300 << 20, "mps": 300 << 20}  # runtime, context, allocator slack
STEP_OVERHEAD_S = {"cpu": 0.02, "cuda": 0.01, "mps": 0.02}  # per step, whatever the size (small models)
SLOW_SECONDS = 180.0  # "a few minutes": longer than this on a CPU gets a warning
MEMORY_MARGIN = 0.9  # warn when the estimate uses more than this share of what the device has


@dataclass(frozen=True)
class DeviceInfo:
    kind: str = "cpu"  # cpu | cuda | mps
    memory_bytes: int = 0  # free / available now (0 = unknown)
    total_bytes: int = 0
    cores: int = 1
    name: str = ""
    flops: float | None = None  # sustained FLOP/s when known (else a rule of thumb by kind)


@dataclass(frozen=True)
class Estimate:
    memory_bytes: int
    seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
    detail: dict[str, float] = field(default_factory=dict)  # the parts, for the curious and the tests


def system_memory_bytes() -> int:
    """Memory available to a new job (Linux: MemAvailable; elsewhere the physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


# ------------------------------------------------------------------------------------------ model facts


def _safetensors_params(path: Path) -> int | None:
    """Number of values in a safetensors file, from its header only (None when it is not one)."""
    from aigc_desktop.core.errors import UserError
    from aigc_desktop.core.safetensors_header import read_header

    try:
        # The one checked reader (regular files only, bounded, schema-checked); shapes are all we need.
        header = read_header(path, check_offsets=False)
    except (OSError, UserError):
        return None
    return sum(t.numel for t in header.tensors.values())


def _weight_files(path: Path) -> list[Path]:
    """The weight files a model loads: a single file, or per folder of a diffusers model the files
    without a variant (".fp16.") when there are any (folders often ship both)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    chosen: list[Path] = []
    by_dir: dict[Path, list[Path]] = {}
    for p in path.rglob("*"):
        if p.suffix in WEIGHT_SUFFIXES and p.is_file():
            by_dir.setdefault(p.parent, []).append(p)
    for files in by_dir.values():
        plain = [p for p in files if ".fp16." not in p.name]
        chosen += plain or files
    return chosen


def model_params(path: str | os.PathLike) -> float:
    """Parameter count of a model file or folder (unknown formats: 4 bytes per parameter)."""
    total = 0.0
    for p in _weight_files(Path(path)):
        n = _safetensors_params(p) if p.suffix == ".safetensors" else None
        total += n if n is not None else p.stat().st_size / 4
    return total


def _config(path: Path, component: str) -> dict[str, Any]:
    from aigc_desktop.core.errors import UserError
    from aigc_desktop.core.safe_io import load_json_file

    file = path / component / "config.json"
    if not file.is_file():
        return {}
    try:
        data = load_json_file(file, max_bytes=1 << 20)
    except UserError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class _Shape:
    unet_params: float
    base_channels: int
    vae_channels: int
    factor: int  # image pixels per latent position, per side


def _diffusion_shape(path: Path, total_params: float) -> _Shape:
    unet, vae = _config(path, "unet"), _config(path, "vae")  # {} for single files
    base = (unet.get("block_out_channels") or [SD_BASE_CHANNELS])[0]
    vae_blocks = vae.get("block_out_channels") or [SD_VAE_CHANNELS, 256, 512, 512]
    unet_files = _weight_files(path / "unet") if path.is_dir() else []
    unet_params = sum(_safetensors_params(p) or p.stat().st_size / 4 for p in unet_files) if unet_files \
        else total_params * 0.8  # a single file: the UNet is about 80% of SD's parameters
    return _Shape(unet_params=float(unet_params), base_channels=int(base), vae_channels=int(vae_blocks[0]),
                  factor=2 ** (len(vae_blocks) - 1))


def _attention_cost(positions: float) -> float:
    return positions * (1 + positions / ATTENTION_POSITIONS)


def _bytes_per_value(device: DeviceInfo, dtype: str) -> int:
    if dtype in ("fp32", "float32"):
        return 4
    if dtype in ("fp16", "bf16", "float16", "bfloat16"):
        return 2
    return 2 if device.kind == "cuda" else 4  # the engines' "auto"


# ------------------------------------------------------------------------------------------ estimate


def estimate(spec: Any, device: DeviceInfo, measured_step_s: float | None = None,
             measured_at: Any = None) -> Estimate:
    """Memory and time for `spec` on `device`. `measured_step_s`: seconds per step measured on this device
    and model, at `measured_at` (a spec or a (width, height, batch) tuple; None = at this spec's size)."""
    model = getattr(spec, "model", None)
    path = Path(getattr(model, "path", "") or "")
    total_params = model_params(path) if str(path) else 0.0
    per_value = _bytes_per_value(device, getattr(spec, "dtype", "auto"))
    weights = total_params * per_value
    params = getattr(spec, "params", None)
    overhead = OVERHEAD_BYTES.get(device.kind, OVERHEAD_BYTES["cpu"])
    if params is None:  # StyleGAN, training, conversions: the weights are what we can say
        seconds = (measured_step_s or 0.0) * getattr(spec, "total_steps", 1)
        memory = int(weights + overhead)
        return Estimate(memory, seconds, _warnings(memory, seconds, device), {"weights": weights})

    shape = _diffusion_shape(path, total_params)
    batch = max(1, int(params.batch_size))
    cfg = 2 if params.cfg_scale != 1.0 else 1
    positions = (params.width // shape.factor) * (params.height // shape.factor)
    # torch's attention (SDPA, flash / memory-efficient kernels on CPU and CUDA) never holds the full
    # positions x positions matrix: activations grow linearly with the size; time does not.
    unet_act = UNET_VALUES_PER_POSITION_CHANNEL * cfg * batch * positions * shape.base_channels * per_value
    vae_act = VAE_VALUES_PER_PIXEL_CHANNEL * batch * params.width * params.height * shape.vae_channels * per_value
    memory = int(weights + max(unet_act, vae_act) + overhead)

    steps = spec.total_steps  # already counts strength and batch_count
    if measured_step_s:
        w0, h0, b0 = _measured_size(measured_at, params)
        p0 = (w0 // shape.factor) * (h0 // shape.factor)
        step = measured_step_s * (_attention_cost(positions) / _attention_cost(p0)) * (batch / b0)
    else:
        rate = device.flops or (GPU_FLOPS.get(device.kind) if device.kind != "cpu"
                                else CPU_FLOPS_PER_CORE * max(1, device.cores))
        flops = SD_PASS_FLOPS * (shape.unet_params / SD_UNET_PARAMS) * (_attention_cost(positions)
                                                                        / _attention_cost(64 * 64)) * cfg * batch
        step = flops / rate + STEP_OVERHEAD_S.get(device.kind, STEP_OVERHEAD_S["cpu"])
    seconds = step * steps + 2 * step * params.batch_count  # + the VAE decode, about two steps' work
    detail = {"weights": weights, "unet_activations": unet_act, "vae_activations": vae_act, "step_s": step}
    return Estimate(memory, seconds, _warnings(memory, seconds, device), detail)


def _measured_size(measured_at: Any, params: Any) -> tuple[int, int, int]:
    if measured_at is None:
        return params.width, params.height, max(1, params.batch_size)
    if isinstance(measured_at, tuple):
        w, h, b = measured_at
        return int(w), int(h), max(1, int(b))
    p = measured_at.params
    return p.width, p.height, max(1, p.batch_size)


def warnings_for(memory: int, seconds: float, device: DeviceInfo) -> tuple[str, ...]:
    """The warning lines for a memory and time estimate on `device` (several jobs added up: the window)."""
    return _warnings(memory, seconds, device)


def _warnings(memory: int, seconds: float, device: DeviceInfo) -> tuple[str, ...]:
    out = []
    where = device.name or device.kind.upper()
    if device.memory_bytes and memory > device.memory_bytes * MEMORY_MARGIN:
        out.append(f"Needs about {human_bytes(memory)} of memory; {where} has {human_bytes(device.memory_bytes)} "
                   "free: use a smaller size or batch")
    if device.kind == "cpu" and seconds > SLOW_SECONDS:
        out.append(f"Will take about {duration_text(seconds)} on the CPU")
    return tuple(out)


def duration_text(seconds: float) -> str:
    """A duration as a warning says it: '45 s', '12 min', '2.5 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
