"""The one atomic write: a crash, a kill or a power loss mid-write leaves the previous file intact.

Write to a temporary file in the same folder (same file system, so the rename is atomic), flush and fsync it,
rename it over the target, then fsync the folder so the rename itself survives a power loss.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its rename is durable enough there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _temporary_beside(target: Path) -> Iterator[tuple[int, Path]]:
    """(fd, path) of a new temporary file in the target's folder; removed when the block raises."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        yield fd, tmp
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _commit(tmp: Path, target: Path) -> None:
    """Give the complete temporary file the target's permissions (or the umask's), rename it over the target."""
    if target.exists():  # keep the user's permission bits (mkstemp makes 0600)
        with contextlib.suppress(OSError):
            os.chmod(tmp, target.stat().st_mode & 0o7777)
    else:
        with contextlib.suppress(OSError):
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path`; on a clean exit it replaces `path`, on an error it vanishes.

    The old file stays untouched until the new one is complete on disk. Errors (disk full, permission
    denied) propagate as OSError after the temporary file is removed.
    """
    target = Path(path)
    with _temporary_beside(target) as (fd, tmp):
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _commit(tmp, target)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` for writers that take a file name, not a handle (Pillow's save of some
    images, safetensors' save_file, torch.save of large state): written there, fsynced, renamed over `path`
    on a clean exit; removed on an error, leaving the old file intact."""
    target = Path(path)
    with _temporary_beside(target) as (fd, tmp):
        os.close(fd)
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        _commit(tmp, target)


def set_aside(path: str | os.PathLike, suffix: str = ".bad") -> Path | None:
    """Rename a file the app cannot use (a broken settings file) to NAME + suffix beside it, so a fresh one can
    be written and the user's old one is kept; the new path, or None when it could not be moved."""
    source = Path(path)
    target = source.with_name(source.name + suffix)
    try:
        os.replace(source, target)
    except OSError:
        return None
    return target


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[IO], None],
                 encoding: str = "utf-8") -> Path:
    """Write bytes, text, or whatever `data(handle)` writes to a binary handle, atomically. Returns the path."""
    with atomic_open(path, "wb") as handle:
        if callable(data):
            data(handle)
        elif isinstance(data, str):
            handle.write(data.encode(encoding))
        else:
            handle.write(data)
    return Path(path)
