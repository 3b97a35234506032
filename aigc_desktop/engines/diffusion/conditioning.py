"""Prompt conditioning for a job: prompt text -> what the pipeline call takes.

`prepared(model, params)` is entered once per job; it is the place where per-job network changes
(LoRAs, textual-inversion tokens) are applied and, on exit, removed again, and where A1111 prompt
syntax is turned into weighted embeddings. This first version passes plain prompt strings.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from aigc_desktop.core.params import GenerationParams


@dataclass
class Conditioning:
    prompt: str
    negative_prompt: str

    def pipeline_kwargs(self, n: int) -> dict[str, Any]:
        """Keyword arguments for a pipeline call making `n` images."""
        return {"prompt": [self.prompt] * n, "negative_prompt": [self.negative_prompt] * n}

    def record(self) -> dict[str, Any]:
        """What the image record should add (LoRAs with hashes, embeddings used)."""
        return {}


@contextmanager
def prepared(model: Any, params: GenerationParams) -> Iterator[Conditioning]:
    yield Conditioning(params.prompt, params.negative_prompt)
