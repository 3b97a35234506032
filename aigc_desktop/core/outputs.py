"""Saving generated images: unique names, never overwriting, metadata in every PNG."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Sequence

from aigc_desktop.core.metadata import save_png

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str, limit: int = 40) -> str:
    return _SAFE.sub("_", text.strip())[:limit].strip("_") or "image"


def next_free(path: Path) -> Path:
    """`path`, or `path` with -1, -2, ... before the suffix if it exists."""
    if not path.exists():
        return path
    i = 1
    while True:
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            return candidate
        i += 1


def save_to_folder(images: Sequence[Any], records: Sequence[dict[str, Any]], folder: str | Path) -> list[Path]:
    """Save each image as <folder>/<YYYY-MM-DD>/<HHMMSS>-<seed>-<prompt>.png with its record."""
    day = Path(folder) / time.strftime("%Y-%m-%d")
    saved = []
    for image, record in zip(images, records):
        name = f"{time.strftime('%H%M%S')}-{record.get('seed', 0)}-{_slug(str(record.get('prompt', '')))}.png"
        saved.append(save_png(image, next_free(day / name), record))
    return saved


def cli_targets(out: str | Path, count: int) -> list[Path]:
    """Where the CLI writes `count` images: into a folder (existing, or named without a suffix / with a
    trailing slash), or to a file (numbered -0, -1, ... when there is more than one image)."""
    out_s = str(out)
    path = Path(out).expanduser()
    if path.is_dir() or out_s.endswith(("/", "\\")) or not path.suffix:
        return [path / f"{time.strftime('%Y%m%d-%H%M%S')}-{i:03d}.png" for i in range(count)]
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(count)]
