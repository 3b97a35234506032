"""Shared fixtures of the diffusion tests."""

import pytest
import torch

from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.engines.diffusion.engine import DiffusionEngine


@pytest.fixture(scope="module")
def engine():
    """A CPU diffusion engine on one thread (one thread: the same kernels' reduction order run to run)."""
    torch.set_num_threads(1)
    eng = DiffusionEngine(EngineOptions(device="cpu", threads=1))
    yield eng
    eng.close()
