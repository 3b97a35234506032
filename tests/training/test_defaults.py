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
