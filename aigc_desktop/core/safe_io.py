"""Reading a user's file safely: only regular files, a byte limit decided before reading, bounded JSON.

Every reader of a file a user brings (models, images, projects, settings) goes through these helpers, so a
named pipe never blocks, a symlink to /dev/zero never fills memory, a header that claims terabytes is refused
with the number it claimed, and JSON nested thousands deep or holding NaN/Infinity is a one-line error.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from aigc_desktop.core.errors import UserError, first_line

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

JSON_MAX_DEPTH = 64  # configs, headers, graphs and records nest a handful of levels; 64 is generous
JSON_MAX_BYTES = 64 * MiB


class UnsafeFileError(UserError):
    """A file that is not a regular file, or larger than its reader allows."""


class JsonLimitError(UserError):
    """JSON from a user's file that is too large, too deep, not JSON, or holds NaN / Infinity."""


def _label(path: Path, what: str | None) -> str:
    return f"{what} {path.name}" if what else str(path.name or path)


def regular_file(path: str | os.PathLike, what: str | None = None) -> Path:
    """The resolved path when it is a regular file (after symlinks); otherwise a one-line UnsafeFileError.

    Checked with stat() before any open(): opening a FIFO blocks forever, a device file never ends.
    """
    p = Path(path)
    try:
        st = os.stat(p)  # follows symlinks
    except FileNotFoundError:
        raise UnsafeFileError(f"{_label(p, what)}: file not found") from None
    except PermissionError:
        raise UnsafeFileError(f"{_label(p, what)}: permission denied") from None
    except OSError as exc:
        raise UnsafeFileError(f"{_label(p, what)}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UnsafeFileError(f"{_label(p, what)} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(f"{_label(p, what)} is not a regular file (a pipe, socket or device)")
    return p


def is_regular_file(path: str | os.PathLike) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def file_size(path: str | os.PathLike, what: str | None = None) -> int:
    return os.stat(regular_file(path, what)).st_size


def check_size(size: int, limit: int, label: str) -> None:
    """Refuse a size (from a header, an archive entry or the file system) over `limit`, naming both numbers."""
    if size < 0 or size > limit:
        raise UnsafeFileError(f"{label}: {human_bytes(size)} is more than the {human_bytes(limit)} allowed")


def read_bytes(path: str | os.PathLike, limit: int, what: str | None = None) -> bytes:
    """The whole file, when it is a regular file of at most `limit` bytes (checked before reading)."""
    p = regular_file(path, what)
    size = os.stat(p).st_size
    check_size(size, limit, _label(p, what))
    with open(p, "rb") as handle:
        data = handle.read(limit + 1)
    check_size(len(data), limit, _label(p, what))  # the file grew while we read it
    return data


def human_bytes(n: int | float) -> str:
    n = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


# ---------------------------------------------------------------------------------------------- JSON


def json_depth_ok(text: str, max_depth: int) -> bool:
    """True when brackets outside strings never nest deeper than `max_depth` (one linear pass, no recursion)."""
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise ValueError(f"{text[:20]} is out of range")
    return value


def loads_json(data: str | bytes, what: str = "JSON", max_bytes: int = JSON_MAX_BYTES,
               max_depth: int = JSON_MAX_DEPTH) -> Any:
    """Parse JSON from a user's file with a size limit, a depth limit and finite numbers only.

    Raises JsonLimitError with one line that names `what` (e.g. "settings.json", "the safetensors header of
    x.safetensors") and the reason.
    """
    if len(data) > max_bytes:
        raise JsonLimitError(f"{what}: {human_bytes(len(data))} of JSON is more than the "
                             f"{human_bytes(max_bytes)} allowed")
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise JsonLimitError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    if not json_depth_ok(text, max_depth):
        raise JsonLimitError(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JsonLimitError(f"{what} nests too deep") from None
    except ValueError as exc:
        raise JsonLimitError(f"{what} is not valid JSON ({first_line(exc, 120)})") from None


def load_json_file(path: str | os.PathLike, what: str | None = None, max_bytes: int = JSON_MAX_BYTES,
                   max_depth: int = JSON_MAX_DEPTH) -> Any:
    p = Path(path)
    data = read_bytes(p, max_bytes, what)
    return loads_json(data, what=_label(p, what), max_bytes=max_bytes, max_depth=max_depth)
