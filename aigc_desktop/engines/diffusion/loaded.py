"""A loaded diffusion model: its text-to-image pipeline and what the engine needs to know about it.

Its own module, imported by both loaders (loader.py for folders, single_file.py for checkpoints), so that
neither imports the other at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from aigc_desktop.core import hashing
from aigc_desktop.core.jobs import ModelRef


@dataclass
class LoadedModel:
    """A model ready to run: its text-to-image pipeline plus what the engine needs to know about it."""

    ref: ModelRef
    pipe: Any  # StableDiffusionPipeline | StableDiffusionXLPipeline
    family: str  # sd1 | sd2 | sdxl
    variant: str | None  # "inpaint" for 9-channel UNets
    device: torch.device
    dtype: torch.dtype
    scheduler_config: dict[str, Any] = field(default_factory=dict)
    _sha256: str | None = None

    @property
    def name(self) -> str:
        return self.ref.name

    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hashing.sha256_file(self.ref.path)
        return self._sha256

    def modules_for_size(self):
        return [m for m in self.pipe.components.values() if isinstance(m, torch.nn.Module)]
