"""The default models bundled in resources/models: found by the catalog, within the size budget, and the
diffusion model follows simple prompts (colour checks on its own images, through the app's engine)."""

from __future__ import annotations

import numpy as np
import pytest

from aigc_desktop.core import catalog

BUDGET_MB = 25


def test_defaults_are_discovered_and_small(bundled_models):
    models = {m.name: m for m in catalog.discover([bundled_models])}
    assert models["emoji-diffusion"].kind == "diffusers" and models["emoji-diffusion"].family == "sd1"
    assert models["emoji-stylegan"].kind == "stylegan"
    assert models["emoji-morph-vae"].kind == "vae_morph"
    total = sum(p.stat().st_size for p in bundled_models.rglob("*") if p.is_file() and p.suffix != ".png")
    assert total / 1e6 <= BUDGET_MB
    for folder in bundled_models.iterdir():
        if folder.is_dir():
            assert (folder / "MODEL_CARD.md").is_file(), folder.name


def test_default_diffusion_follows_simple_prompts(bundled_models):
    from aigc_desktop.core.jobs import DiffusionJob, ModelRef
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.engines.diffusion.engine import DiffusionEngine

    folder = bundled_models / "emoji-diffusion"
    names = set((folder / "trained_captions.txt").read_text(encoding="utf-8").split("\n"))
    assert {"red apple", "cat face", "sun", "red heart"} <= names
    engine = DiffusionEngine()

    def mean_rgb(prompt: str) -> np.ndarray:
        params = GenerationParams(prompt=prompt, width=64, height=64, steps=12, seed=3, cfg_scale=5.0,
                                  scheduler="euler", batch_size=2)
        images = engine.run(DiffusionJob(model=ModelRef(str(folder)), params=params), lambda e: None,
                            lambda: False).images
        pixels = np.concatenate([np.asarray(im, dtype=np.float32).reshape(-1, 3) for im in images])
        foreground = pixels[np.abs(pixels - 236).max(axis=1) > 30]  # not the light grey background
        return foreground.mean(axis=0)

    apple, cat, heart = mean_rgb("red apple"), mean_rgb("cat face"), mean_rgb("heart")
    assert apple[0] > apple[1] + 60 and apple[0] > apple[2] + 60  # red
    assert cat[0] > cat[2] + 60 and cat[1] > cat[2] + 40  # yellow-orange
    assert heart[0] > heart[1] + 60  # red / pink
    assert not np.allclose(apple, heart, atol=10)


def test_default_stylegan_renders_varied_images_through_the_engine(bundled_models):
    from aigc_desktop.core.jobs import ModelRef, StyleGANJob
    from aigc_desktop.core.runner import EngineOptions, Runner

    runner = Runner(EngineOptions(threads=1))
    try:
        end = runner.run(StyleGANJob(model=ModelRef(str(bundled_models / "emoji-stylegan")), seeds=(0, 1, 2)),
                         lambda e: None, lambda: False)
    finally:
        runner.close()
    images = [np.asarray(im, dtype=np.float32) for im in end.images]
    assert all(im.shape == (64, 64, 3) for im in images)
    assert all(im.std() > 10 for im in images)  # a picture, not a flat colour
    assert np.abs(images[0] - images[1]).mean() > 5 and np.abs(images[1] - images[2]).mean() > 5
    # emoji-like: a light background around a coloured subject
    border = np.concatenate([im[:3].reshape(-1, 3) for im in images] + [im[-3:].reshape(-1, 3) for im in images])
    assert border.mean() > 180


def test_default_morph_vae_reconstructs_and_morphs_change_shape(bundled_models):
    """Its card's sample sheet holds eight training emoji (top row): they reconstruct closely, and the slerp
    midpoint of two of them is not their pixel average (a cross-fade)."""
    import torch
    from PIL import Image

    from aigc_desktop.engines.vae_morph import load_morph_vae, slerp
    from aigc_desktop.training.vae import psnr

    folder = bundled_models / "emoji-morph-vae"
    vae = load_morph_vae(folder)
    assert vae.config.resolution == 64
    sheet = np.asarray(Image.open(folder / "samples.png").convert("RGB"), dtype=np.float32)
    tiles = np.stack([sheet[:64, 64 * i:64 * (i + 1)] for i in range(8)])
    x = torch.from_numpy(tiles).permute(0, 3, 1, 2) / 127.5 - 1
    with torch.no_grad():
        mu = vae.encode(x)[0]
        assert psnr(vae.decode(mu).clamp(-1, 1), x).mean() > 20
        ends_a, ends_b, middle = vae.decode(mu[:4]), vae.decode(mu[4:]), vae.decode(slerp(mu[:4], mu[4:], 0.5))
    assert torch.isfinite(middle).all()
    assert (middle - (ends_a + ends_b) / 2).abs().mean() > 0.05
