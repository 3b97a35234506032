"""Tiny models for the travel tests, built in code once per session."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def morph_vae_path(tmp_path_factory):
    """A 16x16 morph VAE with random weights (float32 on disk, so what a test loads is what the engine runs)."""
    from aigc_desktop.engines.vae_morph import MorphVAE, MorphVAEConfig, save_morph_vae

    torch.manual_seed(0)
    model = MorphVAE(MorphVAEConfig(resolution=16, latent_dim=8, channels=(8, 8)))
    return save_morph_vae(model, tmp_path_factory.mktemp("vae") / "tiny-morph", dtype=torch.float32)


@pytest.fixture(scope="session")
def stylegan_path(tmp_path_factory):
    from aigc_desktop.engines.stylegan.loaders import save_ours
    from aigc_desktop.testing.stylegan import make_generator

    return save_ours(make_generator("sg2-skip", seed=5), tmp_path_factory.mktemp("sg") / "tiny-sg")


@pytest.fixture(scope="session")
def runner():
    from aigc_desktop.core.runner import EngineOptions, Runner

    torch.set_num_threads(1)
    r = Runner(EngineOptions(device="cpu", threads=1))
    yield r
    r.close()


@pytest.fixture
def key_images():
    """Three different 20x24 pictures (not square: they are cropped to the VAE's size)."""
    import numpy as np
    from PIL import Image

    rnd = np.random.RandomState(1)
    return [Image.fromarray(rnd.randint(0, 256, (20, 24, 3), dtype=np.uint8)) for _ in range(3)]
