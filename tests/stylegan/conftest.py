"""Tiny StyleGAN checkpoints for the StyleGAN tests, written once per session in every supported format."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # The machine is shared: one thread keeps timings steady and the results identical run to run.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def generators():
    """name -> tiny Generator with random (non-trivial) weights, one per configuration."""
    from aigc_desktop.testing.stylegan import TINY_CONFIGS, make_generator

    return {name: make_generator(name, seed=i) for i, name in enumerate(TINY_CONFIGS)}


@pytest.fixture(scope="session")
def sg_files(tmp_path_factory, generators):
    """Checkpoints on disk: NVIDIA pickles of every config, a rosinality .pt, our format (folder)."""
    from aigc_desktop.engines.stylegan.loaders import save_ours
    from aigc_desktop.testing.stylegan import write_nvidia_pickle, write_rosinality

    root = tmp_path_factory.mktemp("stylegan")
    files = {"marker": root / "embedded-source-ran.txt"}
    for name, G in generators.items():
        files[name] = write_nvidia_pickle(G, root / f"{name}.pkl", files["marker"])
    files["rosinality"] = write_rosinality(generators["sg2-skip"], root / "rosinality.pt")
    files["ours"] = save_ours(generators["sg2-skip"], root / "sg2-skip-ours")
    return files
