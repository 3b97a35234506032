"""Names of the files in a training run folder and reading its loss log (no torch: the UI reads these)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from aigc_desktop.core.safe_io import KiB, MiB, JsonLimitError, loads_json, read_bytes

CHECKPOINT = "checkpoint.pt"
LOSSES = "losses.jsonl"
MODEL_DIR = "model"
SAMPLES_DIR = "samples"


MAX_LOSSES_BYTES = 256 * MiB  # a row is ~100 bytes: millions of logged steps
MAX_ROW_BYTES = 16 * KiB


def _loss_row(value: Any) -> dict[str, float] | None:
    """A row as the trainers write it: an object of finite numbers with a whole `step`; anything else is None."""
    if not isinstance(value, dict) or isinstance(value.get("step"), bool) or not isinstance(value.get("step"), int):
        return None
    for v in value.values():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > 1e300:
            return None
    return value


def read_losses(out: str | Path) -> list[dict[str, float]]:
    """The loss log of a run folder: one dict per logged step ({"step", "time", "loss", ...}).

    The folder may come from anyone: the file is read with a size limit (UnsafeFileError, a UserError, when it
    is larger or not a regular file) and lines that are not such rows are skipped."""
    path = Path(out) / LOSSES
    if not path.is_file():
        return []
    rows = []
    for line in read_bytes(path, MAX_LOSSES_BYTES, "loss log").splitlines():
        if not line.strip():
            continue
        try:
            row = _loss_row(loads_json(line, what="loss log row", max_bytes=MAX_ROW_BYTES, max_depth=2))
        except JsonLimitError:
            continue
        if row is not None:
            rows.append(row)
    return rows


def has_checkpoint(out: str | Path) -> bool:
    return (Path(out) / CHECKPOINT).is_file()
