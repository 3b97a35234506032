"""The `.aigc` zip read as untrusted input: every name, size and ratio is checked before a byte is used.

A project file may come from anyone (a mail attachment, a shared drive), so nothing it claims is trusted:
member names must be plain relative paths (no `..`, no absolute or drive names, no backslashes, no
duplicates); each member's claimed size, the total of the claims and the deflate ratio have limits; a
member is read in chunks and refused as soon as it passes its claim or its limit (never trusting
ZipInfo.file_size alone); PNG members show their pixel count in the header before anything is decoded.
Nothing is ever extracted: members are read into memory, so no name can write outside any folder.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from PIL import Image

from aigc_desktop.core.errors import UserError
from aigc_desktop.core.project.errors import ProjectError
from aigc_desktop.core.safe_io import GiB, MiB, human_bytes, regular_file


@dataclass(frozen=True)
class Limits:
    max_members: int = 50_000
    max_member_bytes: int = 1 * GiB  # one PNG of a 16k x 16k RGBA layer is far below this
    max_total_bytes: int = 64 * GiB  # the sum of the members' claimed sizes
    max_ratio: int = 100  # deflated members: uncompressed / compressed (JSON compresses ~10x)
    max_json_bytes: int = 64 * MiB
    max_side: int = 32_768
    # 128 megapixels (11585^2): far past any layer an artist paints, below Pillow's own bomb error (179 MP)
    max_pixels: int = 1 << 27


LIMITS = Limits()
CHUNK = 1 * MiB
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {(0, 8): "L", (2, 8): "RGB", (6, 8): "RGBA"}  # (colour type, bit depth) -> PIL mode
# Everything zipfile / zlib raise on a damaged or hostile archive; mapped to one ProjectError line.
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, struct.error,
              ValueError, KeyError, IndexError, OverflowError, NotImplementedError, RuntimeError,
              UnicodeDecodeError)


@dataclass(frozen=True)
class Member:
    name: str
    size: int  # claimed uncompressed size
    crc: int


class ProjectZip:
    """An opened, checked project archive. Use as a context manager; keep it open only for one operation."""

    def __init__(self, path: str | Path, limits: Limits = LIMITS) -> None:
        self.path = Path(path)
        self.label = self.path.name
        self.limits = limits
        try:
            regular_file(self.path, "Project")
        except UserError as exc:
            raise ProjectError(str(exc)) from None
        try:
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile:
            raise ProjectError(f"{self.label} is not an AIGC Desktop project (not a zip file)") from None
        except ZIP_ERRORS as exc:
            raise ProjectError(f"{self.label} cannot be read ({_reason(exc)})") from None
        try:
            self._infos = self._check_members(self._zip.infolist())
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> "ProjectZip":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    # ------------------------------------------------------------------------------------ checking
    def _check_members(self, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
        lim = self.limits
        if len(infos) > lim.max_members:
            raise ProjectError(f"{self.label} holds {len(infos)} entries, more than the {lim.max_members} allowed")
        by_name: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            if name.endswith("/") and info.file_size == 0:  # a folder entry some zip tools add
                self._check_name(name.rstrip("/"))
                continue
            self._check_name(name)
            if name in by_name:
                raise ProjectError(f"{self.label}: the entry {name} appears twice")
            if info.flag_bits & 0x1:
                raise ProjectError(f"{self.label}: the entry {name} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ProjectError(f"{self.label}: the entry {name} uses an unsupported compression")
            if info.file_size > lim.max_member_bytes:
                raise ProjectError(f"{self.label}: the entry {name} claims {human_bytes(info.file_size)}, "
                                   f"more than the {human_bytes(lim.max_member_bytes)} allowed")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise ProjectError(f"{self.label}: the entry {name} is damaged (its sizes disagree)")
            if info.file_size > info.compress_size * lim.max_ratio + 64 * 1024:
                ratio = info.file_size // max(1, info.compress_size)
                raise ProjectError(f"{self.label}: the entry {name} expands {ratio} times (a zip bomb?); "
                                   f"at most {lim.max_ratio} is allowed")
            total += info.file_size
            if total > lim.max_total_bytes:
                raise ProjectError(f"{self.label} would expand to more than {human_bytes(lim.max_total_bytes)}"
                                   " (a zip bomb?)")
            by_name[name] = info
        return by_name

    def _check_name(self, name: str) -> None:
        if not _NAME.fullmatch(name) or len(name) > 255:
            shown = name.encode("ascii", "backslashreplace").decode()[:80]
            raise ProjectError(f"{self.label}: the entry name '{shown}' is not allowed in a project "
                               "(absolute, outside the project, or unusual characters)")

    # ------------------------------------------------------------------------------------- reading
    def names(self) -> Iterable[str]:
        return self._infos.keys()

    def has(self, name: str) -> bool:
        return name in self._infos

    def member(self, name: str, what: str | None = None) -> Member:
        info = self._info(name, what)
        return Member(name, info.file_size, info.CRC)

    def members(self) -> dict[str, Member]:
        return {n: Member(n, i.file_size, i.CRC) for n, i in self._infos.items()}

    def _info(self, name: str, what: str | None) -> zipfile.ZipInfo:
        info = self._infos.get(name)
        if info is None:
            raise ProjectError(f"{self.label} is incomplete: {what or name} is missing ({name})")
        return info

    def read(self, name: str, what: str | None = None, limit: int | None = None, head: int | None = None) -> bytes:
        """The member's bytes (or its first `head` bytes), read in chunks and refused past its claim."""
        info = self._info(name, what)
        label = f"{self.label}: {what or name}"
        cap = min(limit if limit is not None else self.limits.max_member_bytes, self.limits.max_member_bytes)
        if info.file_size > cap:
            raise ProjectError(f"{label} is {human_bytes(info.file_size)}, more than the {human_bytes(cap)} allowed")
        want = info.file_size if head is None else min(head, info.file_size)
        parts: list[bytes] = []
        got = 0
        try:
            with self._zip.open(info) as handle:
                while got < want:
                    chunk = handle.read(min(CHUNK, want - got + 1))
                    if not chunk:
                        break
                    parts.append(chunk)
                    got += len(chunk)
                    if got > want and head is None:
                        raise ProjectError(f"{label} is larger than it claims (a damaged or hostile file)")
                if head is None and handle.read(1):  # zipfile stops at the claim; belt and braces
                    raise ProjectError(f"{label} is larger than it claims (a damaged or hostile file)")
        except ProjectError:
            raise
        except ZIP_ERRORS as exc:
            raise ProjectError(f"{label} is damaged ({_reason(exc)})") from None
        data = b"".join(parts)
        if head is None and len(data) != info.file_size:
            raise ProjectError(f"{label} is damaged (shorter than it claims)")
        return data[:want]

    def copy_raw(self, name: str, out: zipfile.ZipFile, what: str | None = None) -> None:
        """Copy a member's stored bytes as they are into `out` (a ZipFile being written): no decoding, no
        re-compression; the kernel copies the bytes where it can (os.copy_file_range). The member keeps its
        CRC, so damage on disk stays detectable when it is read. Falls back to read + write when this
        zipfile has no room for it."""
        info = self._info(name, what)
        label = f"{self.label}: {what or name}"
        if not all(hasattr(out, a) for a in ("fp", "start_dir", "filelist", "NameToInfo", "_didModify")):
            # pragma: no cover - a zipfile without the attributes relied on
            _write_member(out, name, self.read(name, what), info.compress_type)
            return
        try:
            with open(self.path, "rb") as src:
                src.seek(info.header_offset)
                header = src.read(30)
                if len(header) < 30 or header[:4] != b"PK\x03\x04":
                    raise ProjectError(f"{label} is damaged (no local header)")
                name_len, extra_len = struct.unpack("<HH", header[26:30])
                if src.read(name_len) != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"):
                    raise ProjectError(f"{label} is damaged (its local header names another entry)")
                start = info.header_offset + 30 + name_len + extra_len
                if start + info.compress_size > os.fstat(src.fileno()).st_size:
                    raise ProjectError(f"{label} is damaged (the file ends inside it)")
                new = zipfile.ZipInfo(name, date_time=info.date_time)
                new.compress_type = info.compress_type
                new.external_attr = info.external_attr
                new.CRC, new.compress_size, new.file_size = info.CRC, info.compress_size, info.file_size
                zip64 = new.file_size > zipfile.ZIP64_LIMIT or new.compress_size > zipfile.ZIP64_LIMIT
                fp = out.fp
                fp.seek(out.start_dir)
                new.header_offset = fp.tell()
                fp.write(new.FileHeader(zip64))
                _copy_range(src, fp, start, info.compress_size)
                out.start_dir = fp.tell()
                out.filelist.append(new)
                out.NameToInfo[name] = new
                out._didModify = True
        except ProjectError:
            raise
        except OSError:
            raise  # writing the new file failed: the caller reports the save as failed
        except ZIP_ERRORS as exc:
            raise ProjectError(f"{label} cannot be copied ({_reason(exc)})") from None

    def png_info(self, name: str, what: str | None = None) -> tuple[int, int, str]:
        """(width, height, mode) from a PNG member's header, without decoding it."""
        return png_header(self.read(name, what, head=33), f"{self.label}: {what or name}", self.limits)


def _copy_range(src, dst, offset: int, count: int) -> None:
    """`count` bytes of `src` from `offset` to the current position of `dst`, by the kernel when it can."""
    dst.flush()
    out_fd, in_fd = dst.fileno(), src.fileno()
    pos = dst.tell()
    done = 0
    if hasattr(os, "copy_file_range"):
        try:
            while done < count:
                n = os.copy_file_range(in_fd, out_fd, count - done, offset + done, pos + done)
                if n <= 0:
                    break
                done += n
        except OSError:  # another file system, an old kernel: copy through memory instead
            pass
    src.seek(offset + done)
    dst.seek(pos + done)
    while done < count:
        chunk = src.read(min(CHUNK, count - done))
        if not chunk:
            raise ProjectError("the previous file ended while it was being copied")
        dst.write(chunk)
        done += len(chunk)
    dst.seek(pos + count)


def _write_member(out: zipfile.ZipFile, name: str, data: bytes, compression: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    out.writestr(info, data)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__


def png_header(data: bytes, label: str, limits: Limits = LIMITS) -> tuple[int, int, str]:
    """(width, height, mode) of a PNG from its first 33 bytes; refuses modes we never write and pixel
    counts past the limits (a decompression bomb is refused before one pixel is inflated)."""
    if len(data) < 33 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ProjectError(f"{label} is not a PNG image")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    mode = _PNG_MODES.get((colour, depth))
    if mode is None:
        raise ProjectError(f"{label} is a kind of PNG this app never writes (colour type {colour}, {depth} bits)")
    if not (0 < width <= limits.max_side and 0 < height <= limits.max_side) or width * height > limits.max_pixels:
        raise ProjectError(f"{label} claims {width}x{height} pixels, more than the "
                           f"{limits.max_pixels // 1_000_000} megapixels allowed (a decompression bomb?)")
    return width, height, mode


def decode_png(data: bytes, label: str, size: tuple[int, int] | None, modes: tuple[str, ...],
               limits: Limits = LIMITS) -> Image.Image:
    """Decode a PNG member after checking its header against the size and modes the manifest promises."""
    width, height, mode = png_header(data[:33], label, limits)
    if size is not None and (width, height) != tuple(size):
        raise ProjectError(f"{label} is {width}x{height}, the manifest says {size[0]}x{size[1]}")
    if mode not in modes:
        raise ProjectError(f"{label} is {mode}, expected {' or '.join(modes)}")
    try:
        image = Image.open(io.BytesIO(data), formats=("PNG",))
        image.load()
    except Exception as exc:  # any decoder failure on untrusted bytes means the same thing: damaged
        raise ProjectError(f"{label} is damaged ({_reason(exc)})") from None
    if image.mode != mode or image.size != (width, height):
        raise ProjectError(f"{label} is damaged (it decodes as {image.mode} {image.size[0]}x{image.size[1]})")
    return image
