"""Zip surgery for hostile-file tests: rewrite members, patch header fields, craft PNG headers."""

from __future__ import annotations

import json
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable

Entry = tuple[str, bytes, int]  # name, data, compression


def entries(path: Path) -> list[Entry]:
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i), i.compress_type) for i in z.infolist()]


def write(path: Path, items: list[Entry]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names on purpose
        with zipfile.ZipFile(path, "w") as z:
            for name, data, compression in items:
                info = zipfile.ZipInfo(name)
                info.compress_type = compression
                z.writestr(info, data)
    return path


def rewrite(src: Path, dst: Path, change: Callable[[list[Entry]], list[Entry]]) -> Path:
    return write(dst, change(entries(src)))


def manifest_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("manifest.json"))


def with_manifest(src: Path, dst: Path, change: Callable[[dict], object]) -> Path:
    def apply(items: list[Entry]) -> list[Entry]:
        out = []
        for name, data, compression in items:
            if name == "manifest.json":
                m = json.loads(data)
                result = change(m)
                m = m if result is None else result
                data = m if isinstance(m, bytes) else json.dumps(m).encode()
            out.append((name, data, compression))
        return out
    return rewrite(src, dst, apply)


def patch_central(path: Path, name: str, offset: int, fmt: str, value: int, local_offset: int | None = None) -> None:
    """Overwrite a field of `name`'s central directory entry (and of its local header when given)."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    start = 0
    while True:
        at = data.index(b"PK\x01\x02", start)
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46: at + 46 + name_len]) == encoded:
            break
        start = at + 4
    struct.pack_into(fmt, data, at + offset, value)
    if local_offset is not None:
        header = struct.unpack_from("<I", data, at + 42)[0]
        struct.pack_into(fmt, data, header + local_offset, value)
    path.write_bytes(bytes(data))


def png_with_header(width: int, height: int, colour: int = 6) -> bytes:
    """A PNG whose IHDR claims width x height (valid CRCs) with a tiny IDAT: a decompression bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
