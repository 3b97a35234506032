"""Saving generated images: unique names, never overwriting, metadata in every PNG."""

from __future__ import annotations

import errno
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from aigc_desktop.core.errors import UserError
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
    """Save each image as <folder>/<YYYY-MM-DD>/<HHMMSS>-<seed>-<prompt>.png with its record; a failure is a
    SaveError naming the path."""
    day = Path(folder) / time.strftime("%Y-%m-%d")
    saved = []
    for image, record in zip(images, records):
        seed = str(record.get("seed", 0))[:12]
        name = f"{time.strftime('%H%M%S')}-{seed}-{_slug(str(record.get('prompt', '')))}.png"
        try:
            target = next_free(day / name)
        except OSError as exc:
            raise SaveError(f"Could not save into {folder}: {_reason(exc)}") from None
        saved.append(save_image(image, target, record))
    return saved


def cli_targets(out: str | Path, count: int) -> list[Path]:
    """Where the CLI writes `count` images: into a folder (existing, or named without a suffix / with a
    trailing slash), or to a file (numbered -0, -1, ... when there is more than one image)."""
    out_s = str(out)
    path = Path(out).expanduser()
    try:
        is_dir = path.is_dir()
    except OSError:  # a name too long: saving will say so, with the path
        is_dir = False
    if is_dir or out_s.endswith(("/", "\\")) or not path.suffix:
        return [path / f"{time.strftime('%Y%m%d-%H%M%S')}-{i:03d}.png" for i in range(count)]
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(count)]


class SaveError(UserError):
    """An image could not be written where it was asked to go (the message names the path and why)."""


_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied",
            errno.EROFS: "the file system is read-only", errno.ENAMETOOLONG: "the file name is too long",
            errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.EEXIST: "a part of the path is a file, not a folder",
            errno.EISDIR: "the path is a folder"}


def _reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0) or (exc.strerror or str(exc)).strip() or type(exc).__name__


def shown_path(path: Path, limit: int = 80) -> str:
    """A path as an error names it: a file name too long for the file system is cut, its folder kept."""
    if len(path.name) <= limit:
        return str(path)
    return str(path.parent / f"{path.name[:limit - 20]}…{path.name[-12:]}")


def save_image(image: Any, target: str | Path, record: dict[str, Any]) -> Path:
    """save_png, with any failure as one SaveError line naming the path and the reason."""
    target = Path(target)
    try:
        return save_png(image, target, record)
    except OSError as exc:
        raise SaveError(f"Could not save {shown_path(target)}: {_reason(exc)}") from None


def fallback_folder() -> Path:
    """Where the CLI keeps an image it could not save where asked: a folder in the user's temp folder."""
    return Path(tempfile.gettempdir()) / "aigc-desktop-unsaved"


def save_fallback(image: Any, record: dict[str, Any], folder: Path | None = None) -> Path:
    """Keep an image that could not be saved where asked, under a new name in `folder` (default:
    fallback_folder()). Raises SaveError when even that fails."""
    folder = folder or fallback_folder()
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{record.get('seed', 0)}-{os.getpid()}.png"
    return save_image(image, next_free(folder / name), record)
