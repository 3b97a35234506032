"""Names of the files in a training run folder and reading its loss log (no torch: the UI reads these)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

CHECKPOINT = "checkpoint.pt"
LOSSES = "losses.jsonl"
MODEL_DIR = "model"
SAMPLES_DIR = "samples"


def read_losses(out: str | Path) -> list[dict[str, float]]:
    """The loss log of a run folder: one dict per logged step ({"step", "time", "loss", ...})."""
    path = Path(out) / LOSSES
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def has_checkpoint(out: str | Path) -> bool:
    return (Path(out) / CHECKPOINT).is_file()
