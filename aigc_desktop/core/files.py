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
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path`; on a clean exit it replaces `path`, on an error it vanishes.

    The old file stays untouched until the new one is complete on disk. Errors (disk full, permission
    denied) propagate as OSError after the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
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
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


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
