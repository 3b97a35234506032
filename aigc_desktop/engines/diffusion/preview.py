"""Cheap live previews: a linear projection of latents to RGB (published factors), ~0.3 ms per step.

On a GPU the projection runs on the device and its few bytes come back through an asynchronous copy that
is picked up at a later step, so previews never make the CPU wait for the GPU between steps (a blocking
copy each step would leave the GPU idle while the next step's kernels are launched).
"""

from __future__ import annotations

from typing import Callable

import torch
from PIL import Image

# Rows: latent channels; columns: R, G, B. Output roughly in [-1, 1].
SD_FACTORS = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721],
              [-0.2120, -0.2616, -0.7177]]
SDXL_FACTORS = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362],
                [-0.3165, -0.2492, -0.2188]]
SDXL_BIAS = [0.1084, -0.0175, -0.0011]


def project(latents: torch.Tensor, family: str | None = None) -> torch.Tensor:
    """(B, C, h, w) latents -> (B, h, w, 3) uint8 RGB, computed where the latents are."""
    x = latents.detach().float()
    c = x.shape[1]
    if c == 4:
        factors = torch.tensor(SDXL_FACTORS if family == "sdxl" else SD_FACTORS, device=x.device)
        bias = torch.tensor(SDXL_BIAS if family == "sdxl" else [0.0, 0.0, 0.0], device=x.device)
        rgb = torch.einsum("bchw,cr->brhw", x, factors) + bias[None, :, None, None]
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

    def __init__(self, family: str | None, deliver: Callable[[int, list[Image.Image]], None]) -> None:
        self.family = family
        self.deliver = deliver
        self._pending: list[tuple[torch.cuda.Event, torch.Tensor, int]] = []

    def add(self, latents: torch.Tensor, step: int) -> None:
        rgb = project(latents, self.family)
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
