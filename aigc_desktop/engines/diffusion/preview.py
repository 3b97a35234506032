"""Cheap live previews: a linear projection of latents to RGB (published factors), ~0.3 ms per step."""

from __future__ import annotations

import torch
from PIL import Image

# Rows: latent channels; columns: R, G, B. Output roughly in [-1, 1].
SD_FACTORS = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721],
              [-0.2120, -0.2616, -0.7177]]
SDXL_FACTORS = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362],
                [-0.3165, -0.2492, -0.2188]]
SDXL_BIAS = [0.1084, -0.0175, -0.0011]


def latents_to_rgb(latents: torch.Tensor, family: str | None = None) -> list[Image.Image]:
    """One small RGB image per latent of the batch (latent resolution, i.e. 1/8 of the output)."""
    x = latents.detach().to("cpu", torch.float32)
    c = x.shape[1]
    if c == 4:
        factors = torch.tensor(SDXL_FACTORS if family == "sdxl" else SD_FACTORS)
        bias = torch.tensor(SDXL_BIAS if family == "sdxl" else [0.0, 0.0, 0.0])
        rgb = torch.einsum("bchw,cr->brhw", x, factors) + bias[None, :, None, None]
    else:
        # Unknown latent space: show the first three channels, each normalised.
        rgb = x[:, :3] if c >= 3 else x[:, :1].repeat(1, 3, 1, 1)
        rgb = (rgb - rgb.mean(dim=(2, 3), keepdim=True)) / (rgb.std(dim=(2, 3), keepdim=True) + 1e-5) * 0.5
    arr = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a, "RGB") for a in arr]
