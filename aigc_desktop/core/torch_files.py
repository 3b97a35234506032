"""Checks on a PyTorch file (`.ckpt` / `.pt` / `.pth` / `.bin`) before torch.load or a pickle scan reads it.

torch.save writes a zip archive of stored (uncompressed) members: `<root>/data.pkl` (the pickle, small: it
names the tensors, their data lives in `<root>/data/<n>`), plus version records. A hostile archive can claim
members of terabytes, hold a deflated member that expands a thousandfold (a zip bomb), or a `data.pkl`
of gigabytes; torch and zipfile would read them whole. Here the archive's directory is read with zipfile
(which reads no member) and every member's declared size is checked against the real file and small limits
first, so such a file is refused with the number it claimed. Torch-free, like the rest of core.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from aigc_desktop.core.errors import ModelLoadError
from aigc_desktop.core.safe_io import MiB, human_bytes, regular_file

MAX_PICKLE_BYTES = 256 * MiB  # data.pkl of a full SDXL checkpoint is under 1 MiB
MAX_MEMBERS = 200_000  # an SDXL checkpoint has about 2,600
MAX_INFLATED_MEMBER = 64 * MiB  # torch never compresses; a compressed member is small or a bomb
MAX_RATIO = 200  # deflate of real data rarely exceeds 10:1; bombs reach 1000:1


class TorchFileError(ModelLoadError):
    """A PyTorch file whose archive or pickle is damaged, too large, or built to exhaust memory."""


def check_archive(path: str | os.PathLike) -> str | None:
    """Check a torch.save zip archive's members against the file's size and the limits above.

    Returns the name of its data.pkl member, None for a file that is not a zip (a bare pickle or legacy
    torch.save). Raises TorchFileError with one line."""
    p = regular_file(path, "model file")
    size = os.stat(p).st_size
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if not zipfile.is_zipfile(p):
        if magic == b"PK\x03\x04":
            raise TorchFileError(f"{p.name} is truncated or damaged (an incomplete zip archive)")
        return None
    try:
        with zipfile.ZipFile(p) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise TorchFileError(f"{p.name} is a damaged zip archive ({exc})") from None
    if len(members) > MAX_MEMBERS:
        raise TorchFileError(f"{p.name}: its archive lists {len(members)} members, more than the {MAX_MEMBERS} "
                             "allowed")
    pickle_name = None
    for m in members:
        label = f"{p.name}: archive member {m.filename[:80]}"
        if m.header_offset + m.compress_size > size:
            raise TorchFileError(f"{label} claims {human_bytes(m.compress_size)} beyond the end of the "
                                 f"{human_bytes(size)} file (truncated or forged)")
        if m.compress_type != zipfile.ZIP_STORED:
            if m.file_size > MAX_INFLATED_MEMBER or m.file_size > MAX_RATIO * max(m.compress_size, 1):
                raise TorchFileError(f"{label} expands from {human_bytes(m.compress_size)} to "
                                     f"{human_bytes(m.file_size)} (a zip bomb?); refused before decompressing")
        elif m.file_size != m.compress_size:
            raise TorchFileError(f"{label} is stored but claims {human_bytes(m.file_size)} from "
                                 f"{human_bytes(m.compress_size)} (forged)")
        if m.filename.endswith("data.pkl") and pickle_name is None:
            pickle_name = m.filename
            if m.file_size > MAX_PICKLE_BYTES:
                raise TorchFileError(f"{label} is {human_bytes(m.file_size)}, more than the "
                                     f"{human_bytes(MAX_PICKLE_BYTES)} a checkpoint's pickle needs")
    if pickle_name is None:
        raise TorchFileError(f"{p.name} is a zip archive without data.pkl: not a PyTorch checkpoint")
    return pickle_name


def read_archive_pickle(path: str | os.PathLike) -> bytes | None:
    """The data.pkl bytes of a checked torch zip archive (None for a file that is not a zip)."""
    p = Path(path)
    name = check_archive(p)
    if name is None:
        return None
    try:
        with zipfile.ZipFile(p) as zf:
            return zf.read(name)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise TorchFileError(f"{p.name}: its pickle could not be read ({exc})") from None


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a pre-zip torch.save file
_ELEMENT_BYTES = {"Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2, "Char": 1,
                  "Byte": 1, "Bool": 1, "ComplexFloat": 8, "ComplexDouble": 16, "Untyped": 1}


_VALUE_OPS = {"BINUNICODE", "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8", "BININT", "BININT1", "BININT2", "INT",
              "LONG", "LONG1", "LONG4", "GLOBAL", "STRING", "BINSTRING", "SHORT_BINSTRING"}
_MARK_CLOSERS = {"TUPLE", "LIST", "DICT", "APPENDS", "SETITEMS", "ADDITEMS", "FROZENSET", "POP_MARK", "OBJ", "INST"}


def check_legacy_storages(path: str | os.PathLike) -> None:
    """A pre-zip torch.save file declares each storage's element count in its pickle, and torch allocates
    that much before reading the data: refuse a file whose storages claim more bytes than it holds.
    A file that is not in the legacy format is left to its reader."""
    p = regular_file(path, "model file")
    size = os.stat(p).st_size
    with open(p, "rb") as fh:
        _check_legacy(BoundedReader(fh, size), size, p.name)


def check_legacy_bytes(data: bytes, name: str) -> None:
    """check_legacy_storages for a torch.save file held in memory (a storage inside a network pickle)."""
    _check_legacy(io.BytesIO(data), len(data), name)


def _check_legacy(reader, size: int, name: str) -> None:
    import pickletools

    claimed = 0
    try:
        # The legacy format starts with a pickle of one number (PROTO, LONG1, STOP); anything else is not it,
        # and a whole network pickle is not scanned for nothing.
        first = [arg for _i, (_op, arg, _pos) in zip(range(4), pickletools.genops(reader))]
        if _LEGACY_MAGIC not in first:
            return
        for _ in range(2):  # protocol version, system info
            for _item in pickletools.genops(reader):
                pass
        # Each storage is a persistent id ('storage', <type>, key, location, numel, view) pushed after a MARK.
        frames: list[list] = []
        for op, arg, _pos in pickletools.genops(reader):
            if op.name == "MARK":
                frames.append([])
            elif op.name in _VALUE_OPS and frames:
                frames[-1].append(arg)
            elif op.name in ("BINPERSID", "PERSID") and frames:
                frame = frames.pop()
                ints = [a for a in frame if isinstance(a, int) and not isinstance(a, bool)]
                if len(frame) >= 2 and frame[0] == "storage" and isinstance(frame[1], str) and ints:
                    kind = frame[1].rsplit(" ", 1)[-1].removesuffix("Storage")
                    claimed += ints[0] * _ELEMENT_BYTES.get(kind, 1)
            elif op.name in _MARK_CLOSERS and frames and not (frames[-1] and frames[-1][0] == "storage"):
                frames.pop()
    except (ValueError, EOFError, OverflowError, UnicodeDecodeError) as exc:
        raise TorchFileError(f"{name} is damaged or not a PyTorch checkpoint ({exc})") from None
    if claimed > size:
        raise TorchFileError(f"{name}: its tensors claim {human_bytes(claimed)} in a file of {human_bytes(size)} "
                             "(damaged or forged); refused before reading")


class BoundedReader:
    """A binary file whose read(n) never asks for more than what is left of the file.

    A pickle opcode may claim a string of 2**60 bytes; a plain read(n) would try to allocate it."""

    def __init__(self, handle, size: int) -> None:
        self._fh = handle
        self._size = size

    def read(self, n: int = -1) -> bytes:
        left = max(0, self._size - self._fh.tell())
        return self._fh.read(left if n is None or n < 0 else min(n, left))

    def readline(self, limit: int = -1) -> bytes:
        left = max(0, self._size - self._fh.tell())
        return self._fh.readline(left if limit is None or limit < 0 else min(limit, left))

    def readinto(self, buffer) -> int:
        return self._fh.readinto(buffer)

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def peek(self, n: int = 1) -> bytes:
        return self._fh.peek(n)
