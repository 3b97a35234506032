"""Live preview colours: factors fitted to a model's own VAE beat SD's published ones on a non-SD VAE."""

from __future__ import annotations

import numpy as np
import torch

from aigc_desktop.engines.diffusion import preview


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         layers_per_block=1, norm_num_groups=8, scaling_factor=0.3).eval()


def errors(vae, factors) -> float:
    g = torch.Generator().manual_seed(99)  # held out: not the fit's own images
    x = torch.nn.functional.interpolate(torch.rand(6, 3, 4, 4, generator=g) * 2 - 1, size=(32, 32),
                                        mode="bicubic").clamp(-1, 1)
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    target = ((torch.nn.functional.avg_pool2d(x, 2) + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    return float(np.abs(preview.project(z, factors=factors).numpy().astype(float) - target).mean())


def test_fitted_factors_match_the_default_models_vae(bundled_models):
    """The default emoji model's factor-2 VAE is not SD's latent space: SD's factors show wrong colours."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(bundled_models / "emoji-diffusion" / "vae")).eval()
    fitted = preview.factors_for(vae, "sd1")
    assert fitted[0].shape == (4, 3) and fitted[1].shape == (3,)
    assert preview.factors_for(vae, "sd1") is fitted  # fitted once per VAE
    fit_err, sd_err = errors(vae, fitted), errors(vae, preview.published("sd1"))
    # Measured on held-out colour fields: fitted ~19 levels (of 255) off on average, SD's factors ~68.
    assert fit_err < 0.5 * sd_err and fit_err < 30, (fit_err, sd_err)
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    with torch.no_grad():
        z = vae.encode(red).latent_dist.mean * vae.config.scaling_factor
    r, g, b = preview.project(z, factors=fitted).float().mean(dim=(0, 1, 2)).tolist()
    assert r > g + 60 and r > b + 60  # red stays red


def test_sd_architecture_keeps_the_published_factors():
    class Config:
        block_out_channels = [128, 256, 512, 512]
        latent_channels = 4

    class FakeSDVae:
        config = Config()

    w, b = preview.factors_for(FakeSDVae(), "sdxl")
    assert torch.equal(w, torch.tensor(preview.SDXL_FACTORS)) and torch.equal(b, torch.tensor(preview.SDXL_BIAS))
    assert preview.factors_for(None, None) is None


def test_stream_uses_the_fitted_factors():
    vae = tiny_vae(1)
    got = []
    stream = preview.PreviewStream("sd1", lambda step, images: got.append(images), vae=vae)
    latents = torch.randn(2, 4, 8, 8)
    stream.add(latents, 1)
    expected = preview.project(latents, factors=preview.factors_for(vae, "sd1")).numpy()
    assert len(got) == 1 and len(got[0]) == 2 and np.array_equal(np.asarray(got[0][1]), expected[1])
