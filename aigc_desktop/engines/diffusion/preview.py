"""Cheap live previews: a linear projection of latents to RGB, ~0.3 ms per step.

The factors are SD's / SDXL's published ones for those VAEs; any other VAE (the default emoji model's
factor-2 VAE, a custom one) gets its own, fitted by least squares against the VAE itself the first time a
preview stream is made for it: synthetic colour fields are encoded, and RGB at latent resolution is
regressed on the scaled latents (plus a bias). The fit is cached per VAE module.

On a GPU the projection runs on the device and its few bytes come back through an asynchronous copy that
is picked up at a later step, so previews never make the CPU wait for the GPU between steps (a blocking
copy each step would leave the GPU idle while the next step's kernels are launched).
"""

from __future__ import annotations

import logging
import weakref
from typing import Callable

import torch
from PIL import Image

log = logging.getLogger(__name__)

# Rows: latent channels; columns: R, G, B. Output roughly in [-1, 1].
SD_FACTORS = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721],
              [-0.2120, -0.2616, -0.7177]]
SDXL_FACTORS = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362],
                [-0.3165, -0.2492, -0.2188]]
SDXL_BIAS = [0.1084, -0.0175, -0.0011]


# SD's VAE architecture (SD 1.x / 2.x and SDXL share it; only the scaling factor differs).
SD_VAE_BLOCKS = [128, 256, 512, 512]
Factors = tuple[torch.Tensor, torch.Tensor]  # (C, 3) weights, (3,) bias, float32 on the CPU
_fitted: "weakref.WeakKeyDictionary[torch.nn.Module, Factors]" = weakref.WeakKeyDictionary()


def published(family: str | None) -> Factors:
    factors = SDXL_FACTORS if family == "sdxl" else SD_FACTORS
    bias = SDXL_BIAS if family == "sdxl" else [0.0, 0.0, 0.0]
    return torch.tensor(factors), torch.tensor(bias)


def is_sd_vae(vae) -> bool:
    config = getattr(vae, "config", None)
    return config is not None and list(getattr(config, "block_out_channels", [])) == SD_VAE_BLOCKS \
        and getattr(config, "latent_channels", 4) == 4


def fit_factors(vae, images: int = 8, size: int = 64, seed: int = 0) -> Factors:
    """Least-squares latent -> RGB factors for `vae` (an AutoencoderKL), in the scaled latent space the
    sampler works in: rgb ~= ((z - shift) * scaling) @ W + b, rgb in [-1, 1] at latent resolution."""
    config = vae.config
    factor = 2 ** (len(config.block_out_channels) - 1)
    size = max(size, factor * 8)
    g = torch.Generator().manual_seed(seed)
    # Smooth random colour fields (blobs and gradients): the colours matter, not the content.
    coarse = torch.rand(images, 3, 4, 4, generator=g) * 2 - 1
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    param = next(vae.parameters())
    with torch.no_grad():
        z = vae.encode(x.to(param.device, param.dtype)).latent_dist.mean.float().cpu()
    shift = getattr(config, "shift_factor", None) or 0.0
    z = (z - shift) * float(getattr(config, "scaling_factor", 1.0) or 1.0)
    target = torch.nn.functional.avg_pool2d(x, kernel_size=size // z.shape[-1])
    a = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).double()
    a = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype)], dim=1)
    y = target.permute(0, 2, 3, 1).reshape(-1, 3).double()
    solution = torch.linalg.lstsq(a, y).solution.float()
    return solution[:-1].contiguous(), solution[-1].contiguous()


def factors_for(vae, family: str | None) -> Factors | None:
    """The factors for a model's VAE: published for SD's VAE, else fitted once and cached; None when there
    is no VAE to fit against (then the preview normalises the first channels)."""
    if vae is None:
        return published(family) if family in ("sd1", "sd2", "sdxl") else None
    if is_sd_vae(vae):
        return published(family)
    try:
        return _fitted[vae]
    except (KeyError, TypeError):
        pass
    try:
        fit = fit_factors(vae)
    except Exception as exc:  # noqa: BLE001 - a preview must never fail a generation
        log.warning("Could not fit preview colours for this VAE: %s", exc)
        return None
    try:
        _fitted[vae] = fit
    except TypeError:
        pass
    return fit


def project(latents: torch.Tensor, family: str | None = None, factors: Factors | None = None) -> torch.Tensor:
    """(B, C, h, w) latents -> (B, h, w, 3) uint8 RGB, computed where the latents are. `factors` from
    factors_for(); without them SD's published factors for 4-channel latents."""
    x = latents.detach().float()
    c = x.shape[1]
    if factors is None and c == 4:
        factors = published(family)
    if factors is not None and factors[0].shape[0] == c:
        weights, bias = (t.to(x.device) for t in factors)
        rgb = torch.einsum("bchw,cr->brhw", x, weights) + bias[None, :, None, None]
    else:
        # Unknown latent space: show the first three channels, each normalised.
        rgb = x[:, :3] if c >= 3 else x[:, :1].repeat(1, 3, 1, 1)
        rgb = (rgb - rgb.mean(dim=(2, 3), keepdim=True)) / (rgb.std(dim=(2, 3), keepdim=True) + 1e-5) * 0.5
    return ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


def to_images(rgb: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(a, "RGB") for a in rgb.numpy()]


def latents_to_rgb(latents: torch.Tensor, family: str | None = None) -> list[Image.Image]:
    """One small RGB image per latent of the batch (latent resolution, i.e. 1/8 of the output)."""
    return to_images(project(latents, family).cpu())


class PreviewStream:
    """Feeds each step's latents in; hands (step, images) out as soon as they are on the CPU.

    CPU / MPS: at once. CUDA: the projection is copied into pinned memory without blocking; a copy is
    handed out at a later step once its event has completed, and `finish()` hands out the rest.
    """

    def __init__(self, family: str | None, deliver: Callable[[int, list[Image.Image]], None], vae=None) -> None:
        self.family = family
        self.deliver = deliver
        self.factors = factors_for(vae, family)
        self._pending: list[tuple[torch.cuda.Event, torch.Tensor, int]] = []

    def add(self, latents: torch.Tensor, step: int) -> None:
        rgb = project(latents, self.family, self.factors)
        if rgb.device.type != "cuda":
            self.deliver(step, to_images(rgb.cpu()))
            return
        host = torch.empty(rgb.shape, dtype=rgb.dtype, pin_memory=True)
        host.copy_(rgb, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        self._pending.append((done, host, step))
        self._hand_out(wait=False)

    def finish(self) -> None:
        self._hand_out(wait=True)

    def _hand_out(self, wait: bool) -> None:
        while self._pending:
            done, host, step = self._pending[0]
            if not wait and not done.query():
                return
            done.synchronize()
            self._pending.pop(0)
            self.deliver(step, to_images(host))
