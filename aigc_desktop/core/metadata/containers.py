"""Metadata texts out of image containers: PNG chunks, JPEG markers, WebP RIFF chunks and the EXIF they hold.

The containers are walked here, chunk by chunk, without decoding pixels: text after the image data is
found, a truncated file gives what it has, and every length a file claims is checked against a limit
(`limits.py`) before anything is read or inflated. Only regular files are opened. Formats not walked here
go through Pillow with its decompression-bomb warning turned into a one-line error.

The result is a `TextChunks`: texts by the key the tools use ("parameters" for A1111 text, "prompt" /
"workflow" for ComfyUI graphs, "invokeai_metadata", ...), each with where it was found.
"""

from __future__ import annotations

import json
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO

from aigc_desktop.core.metadata import limits
from aigc_desktop.core.metadata.types import TextChunks, UnreadableImage, json_value
from aigc_desktop.core.safe_io import UnsafeFileError, human_bytes, regular_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_HEADER = b"Exif\0\0"

# EXIF tags that carry generation metadata.
TAG_IMAGE_DESCRIPTION, TAG_MAKE, TAG_MODEL = 0x010E, 0x010F, 0x0110
TAG_EXIF_IFD, TAG_USER_COMMENT = 0x8769, 0x9286
_TAG_NAMES = {TAG_IMAGE_DESCRIPTION: "ImageDescription", TAG_MAKE: "Make", TAG_MODEL: "Model",
              TAG_USER_COMMENT: "UserComment"}


# ------------------------------------------------------------------------------------------ text


def decode_text(raw: bytes) -> str:
    """PNG tEXt / zTXt text: Latin-1 by the spec, but many tools write UTF-8 there. Valid UTF-8 is read as
    UTF-8 (Latin-1 text that happens to be valid UTF-8 is vanishingly rare); anything else as Latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def fix_latin1(text: str) -> str:
    """Pillow hands tEXt over as Latin-1: re-read it as UTF-8 where those bytes are valid UTF-8."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _utf16_order(body: bytes) -> str:
    """The byte order of BOM-less UTF-16: ASCII characters have a zero high byte, which lands on even
    offsets in big-endian text and odd ones in little-endian text. Without zeros (all non-ASCII), the one
    that decodes cleanly; big-endian (the EXIF default, piexif's) on a tie."""
    even, odd = body[0::2].count(0), body[1::2].count(0)
    if even != odd:
        return "utf-16-be" if even > odd else "utf-16-le"
    for order in ("utf-16-be", "utf-16-le"):
        try:
            body.decode(order)
            return order
        except UnicodeDecodeError:
            continue
    return "utf-16-be"


def decode_user_comment(raw: bytes | str) -> str:
    """EXIF UserComment: an 8-byte character-code prefix, then the text. A1111 and Civitai write
    "UNICODE\\0" + UTF-16 (either byte order, seen both ways in real files); "ASCII\\0\\0\\0" and
    "JIS" exist; some tools write bare UTF-8 with no prefix."""
    if isinstance(raw, str):
        return raw.rstrip("\0")
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            text = body.decode("utf-16", "replace")
        else:
            body = body[: len(body) - len(body) % 2]
            text = body.decode(_utf16_order(body), "replace")
    elif prefix.startswith(b"ASCII"):
        text = decode_text(body)
    elif prefix.startswith(b"JIS"):
        text = body.decode("shift_jis", "replace")
    else:
        text = decode_text(body if prefix == b"\0" * 8 else raw)
    return text.rstrip("\0")


# ------------------------------------------------------------------------------------------ EXIF (TIFF)

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 129: 1}


def parse_exif(data: bytes) -> dict[int, bytes | int]:
    """The few EXIF tags that carry generation metadata, from a TIFF-structured EXIF block.

    A small bounded reader instead of a general one: every offset and count is checked against the block,
    IFDs are read at most once each, so no file can make it loop or read outside what it was given.
    Text tags come back as their raw bytes, the Exif sub-IFD pointer as an int. Broken data gives {}.
    """
    if data.startswith(_EXIF_HEADER):
        data = data[len(_EXIF_HEADER):]
    if len(data) < 8 or data[:4] not in (b"II*\0", b"MM\0*"):
        return {}
    end = "<" if data[:2] == b"II" else ">"
    out: dict[int, bytes | int] = {}
    seen: set[int] = set()

    def ifd(offset: int, wanted: tuple[int, ...]) -> None:
        if offset in seen or offset < 8 or offset + 2 > len(data):
            return
        seen.add(offset)
        (count,) = struct.unpack_from(end + "H", data, offset)
        for i in range(min(count, 1024)):
            at = offset + 2 + 12 * i
            if at + 12 > len(data):
                return
            tag, kind, n = struct.unpack_from(end + "HHI", data, at)
            if tag not in wanted or kind not in _TYPE_SIZES:
                continue
            size = n * _TYPE_SIZES[kind]
            if tag == TAG_EXIF_IFD:
                if kind in (4, 13):  # LONG or IFD
                    out[tag] = struct.unpack_from(end + "I", data, at + 8)[0]
                continue
            if size <= 4:
                value = data[at + 8: at + 8 + size]
            else:
                (where,) = struct.unpack_from(end + "I", data, at + 8)
                if where + size > len(data):
                    continue
                value = data[where: where + size]
            out.setdefault(tag, bytes(value))

    ifd(struct.unpack_from(end + "I", data, 4)[0], (TAG_IMAGE_DESCRIPTION, TAG_MAKE, TAG_MODEL, TAG_EXIF_IFD,
                                                    TAG_USER_COMMENT))
    sub = out.pop(TAG_EXIF_IFD, None)
    if isinstance(sub, int):
        ifd(sub, (TAG_USER_COMMENT,))
    return out


def _route_json(text: str, origin: str, chunks: TextChunks) -> bool:
    """A JSON object found in EXIF: ComfyUI's {"prompt": ..., "workflow": ...}, an API graph, or Civitai's
    generator graph with `extraMetadata`. True when it was one of those."""
    value = json_value(text, f"the JSON in {origin}", chunks.problems)
    if not isinstance(value, dict):
        return False
    if "extraMetadata" in value:
        chunks.add("civitai", text, origin)
        return True
    found = False
    for key in ("prompt", "workflow"):
        part = value.get(key)
        if isinstance(part, (dict, list)):
            chunks.add(key, json.dumps(part), f"{origin} ({key})")
            found = True
        elif isinstance(part, str) and part.lstrip().startswith("{"):
            chunks.add(key, part, f"{origin} ({key})")
            found = True
    if not found and any(isinstance(v, dict) and "class_type" in v for v in value.values()):
        chunks.add("prompt", text, origin)
        found = True
    return found


def exif_texts(data: bytes, where: str, chunks: TextChunks) -> None:
    """Generation metadata out of an EXIF block into `chunks`: A1111 text in UserComment (or, from some
    tools, ImageDescription); ComfyUI's "prompt:{json}" / "workflow:{json}" in ImageDescription / Make /
    Model (its SaveAnimatedWEBP and the JPEG/WebP save nodes); whole JSON objects in any of them."""
    if len(data) > limits.EXIF_MAX:
        chunks.problems.append(f"{where} is {human_bytes(len(data))}, more than the "
                               f"{human_bytes(limits.EXIF_MAX)} allowed: skipped")
        return
    tags = parse_exif(data)
    for tag in (TAG_USER_COMMENT, TAG_IMAGE_DESCRIPTION, TAG_MAKE, TAG_MODEL):
        raw = tags.get(tag)
        if not isinstance(raw, bytes) or not raw.strip(b"\0 "):
            continue
        origin = f"{where} {_TAG_NAMES[tag]}"
        text = decode_user_comment(raw) if tag == TAG_USER_COMMENT else decode_text(raw.rstrip(b"\0"))
        stripped = text.strip()
        key, sep, rest = stripped.partition(":")
        if sep and key in ("prompt", "workflow") and rest.lstrip().startswith("{"):
            chunks.add(key, rest, origin)
        elif stripped.startswith("{") and _route_json(stripped, origin, chunks):
            continue
        elif tag == TAG_USER_COMMENT or "Steps:" in stripped[: limits.PATTERN_WINDOW]:
            chunks.add("parameters", text, origin)


# ------------------------------------------------------------------------------------------ PNG


def _inflate(data: bytes, limit: int) -> bytes | None:
    """zlib data inflated to at most `limit` bytes; None when broken or larger (a zip bomb stops here)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit)
    except zlib.error:
        return None
    return None if d.unconsumed_tail else out


def _text_chunk(kind: bytes, data: bytes) -> tuple[str, str | None, str]:
    """(key, text or None, problem) of a tEXt / zTXt / iTXt chunk's data."""
    raw_key, _, rest = data.partition(b"\0")
    key = raw_key[:80].decode("latin-1")
    too_big = (f"PNG {kind.decode()} chunk '{key}' inflates to more than {human_bytes(limits.TEXT_CHUNK_MAX)}: "
               "skipped")
    if kind == b"tEXt":
        return key, decode_text(rest), ""
    if kind == b"zTXt":
        raw = _inflate(rest[1:], limits.TEXT_CHUNK_MAX)
        return (key, None, too_big) if raw is None else (key, decode_text(raw), "")
    # iTXt: compression flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        return key, None, ""
    compressed = rest[0] == 1
    _, _, tail = rest[2:].partition(b"\0")
    _, _, text = tail.partition(b"\0")
    if compressed:
        text = _inflate(text, limits.TEXT_CHUNK_MAX)
        if text is None:
            return key, None, too_big
    return key, text.decode("utf-8", "replace"), ""


def _raw_profile_exif(text: str) -> bytes | None:
    """ImageMagick's "Raw profile type exif" text: "\\nexif\\n  <length>\\n<hex lines>"."""
    parts = text.strip().split("\n", 2)
    if len(parts) < 3:
        return None
    try:
        return bytes.fromhex("".join(parts[2].split()))
    except ValueError:
        return None


def _png(fh: BinaryIO, name: str) -> tuple[TextChunks, tuple[int, int] | None]:
    chunks = TextChunks()
    size = None
    total = 0
    exif: bytes | None = None
    fh.seek(len(PNG_SIGNATURE))
    for _ in range(limits.SEGMENTS_MAX * 25):  # real PNGs hold thousands of IDAT chunks
        head = fh.read(8)
        if len(head) < 8:
            break
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            break
        if kind == b"IHDR" and length >= 8:
            data = fh.read(length)
            fh.seek(4, os.SEEK_CUR)
            if len(data) >= 8:
                size = struct.unpack(">II", data[:8])
                check_pixels(size, name)
            continue
        if kind not in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
            fh.seek(length + 4, os.SEEK_CUR)
            continue
        limit = limits.EXIF_MAX if kind == b"eXIf" else limits.TEXT_CHUNK_MAX
        if length > limit or total + length > limits.TEXT_TOTAL_MAX:
            key = fh.read(min(length, 80)).partition(b"\0")[0].decode("latin-1")
            fh.seek(length - min(length, 80) + 4, os.SEEK_CUR)
            what = "eXIf chunk" if kind == b"eXIf" else f"{kind.decode()} chunk '{key}'"
            allowed = limit if length > limit else limits.TEXT_TOTAL_MAX - total
            chunks.problems.append(f"PNG {what} is {human_bytes(length)}, more than the "
                                   f"{human_bytes(allowed)} allowed: skipped")
            continue
        data = fh.read(length)
        fh.seek(4, os.SEEK_CUR)  # CRC
        if len(data) < length:
            break  # truncated file: keep what came before
        total += length
        if kind == b"eXIf":
            exif = exif or data
            continue
        key, text, problem = _text_chunk(kind, data)
        if problem:
            chunks.problems.append(problem)
        if text is None:
            continue
        if key == "Raw profile type exif":
            exif = exif or _raw_profile_exif(text)
            continue
        chunks.add(key, text, f"PNG {kind.decode()} chunk '{key}'")
    if exif:
        exif_texts(exif, "PNG EXIF", chunks)
    return chunks, size


# ------------------------------------------------------------------------------------------ JPEG

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(fh: BinaryIO, name: str) -> tuple[TextChunks, tuple[int, int] | None]:
    chunks = TextChunks()
    size = None
    fh.seek(2)
    for _ in range(limits.SEGMENTS_MAX):
        b = fh.read(2)
        if len(b) < 2 or b[0] != 0xFF:
            break
        marker = b[1]
        while marker == 0xFF:  # fill bytes
            nxt = fh.read(1)
            if not nxt:
                return chunks, size
            marker = nxt[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this point
            break
        lb = fh.read(2)
        if len(lb) < 2:
            break
        length = struct.unpack(">H", lb)[0] - 2  # a segment is at most 64 KiB by construction
        if length < 0:
            break
        if marker == 0xE1 or marker == 0xFE or marker in _SOF:
            data = fh.read(length)
            if len(data) < length:
                break
            if marker == 0xE1 and data.startswith(_EXIF_HEADER):
                exif_texts(data, "JPEG EXIF", chunks)
            elif marker == 0xFE and data.strip(b"\0 "):
                text = decode_text(data.rstrip(b"\0"))
                key = "parameters" if "Steps:" in text[: limits.PATTERN_WINDOW] else "comment"
                chunks.add(key, text, "JPEG comment")
            elif marker in _SOF and len(data) >= 5:
                height, width = struct.unpack(">HH", data[1:5])
                size = (width, height)
                check_pixels(size, name)
        else:
            fh.seek(length, os.SEEK_CUR)
    return chunks, size


# ------------------------------------------------------------------------------------------ WebP


def _webp(fh: BinaryIO, name: str) -> tuple[TextChunks, tuple[int, int] | None]:
    chunks = TextChunks()
    size = None
    fh.seek(12)
    for _ in range(limits.SEGMENTS_MAX):
        head = fh.read(8)
        if len(head) < 8:
            break
        kind, length = struct.unpack("<4sI", head)
        padded = length + (length & 1)
        if kind in (b"VP8X", b"VP8 ", b"VP8L"):
            data = fh.read(min(length, 30))
            fh.seek(padded - len(data), os.SEEK_CUR)
            if kind == b"VP8X" and len(data) >= 10:
                size = (int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1)
            elif kind == b"VP8 " and size is None and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
                w, h = struct.unpack("<HH", data[6:10])
                size = (w & 0x3FFF, h & 0x3FFF)
            elif kind == b"VP8L" and size is None and len(data) >= 5 and data[0] == 0x2F:
                bits = int.from_bytes(data[1:5], "little")
                size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            if size:
                check_pixels(size, name)
        elif kind == b"EXIF":
            if length > limits.EXIF_MAX:
                chunks.problems.append(f"WebP EXIF chunk is {human_bytes(length)}, more than the "
                                       f"{human_bytes(limits.EXIF_MAX)} allowed: skipped")
                fh.seek(padded, os.SEEK_CUR)
                continue
            data = fh.read(length)
            fh.seek(padded - length, os.SEEK_CUR)
            exif_texts(data, "WebP EXIF", chunks)
        else:
            fh.seek(padded, os.SEEK_CUR)
    return chunks, size


# ------------------------------------------------------------------------------------------ others


def check_pixels(size: tuple[int, int], name: str) -> None:
    """Refuse an image whose header claims more pixels than any tool writes (before anything is decoded)."""
    width, height = size
    if width * height > limits.MAX_PIXELS:
        raise UnreadableImage(f"{name} is {width}x{height} pixels, more than the {limits.MAX_PIXELS:,} "
                              "this app opens")


def _pillow(path: Path) -> tuple[TextChunks, tuple[int, int] | None, str]:
    """Formats not walked above (GIF, TIFF, BMP, AVIF, ...): their info strings, comment and EXIF."""
    from PIL import Image, UnidentifiedImageError

    size_on_disk = path.stat().st_size
    if size_on_disk > limits.IMAGE_FILE_MAX:
        raise UnreadableImage(f"{path.name} is {human_bytes(size_on_disk)}, more than the "
                              f"{human_bytes(limits.IMAGE_FILE_MAX)} allowed for an image")
    chunks = TextChunks()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "Corrupt EXIF data" and kin: the reader says what matters
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt, size, info = im.format or "", im.size, dict(im.info)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage(f"{path.name} has more pixels than this app opens (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise UnreadableImage(f"{path.name} is not an image this app can read ({type(exc).__name__})") from None
    check_pixels(size, path.name)
    for key, value in info.items():
        if isinstance(key, str) and isinstance(value, str) and len(value) <= limits.TEXT_CHUNK_MAX:
            chunks.add(key, fix_latin1(value), f"{fmt} '{key}'")
    exif = info.get("exif")
    if isinstance(exif, bytes):
        exif_texts(exif, f"{fmt} EXIF", chunks)
    comment = info.get("comment")
    if isinstance(comment, bytes) and comment.strip() and len(comment) <= limits.TEXT_CHUNK_MAX:
        text = decode_text(comment)
        chunks.add("parameters" if "Steps:" in text[: limits.PATTERN_WINDOW] else "comment", text, f"{fmt} comment")
    return chunks, size, fmt


def open_regular(path: str | os.PathLike) -> Path:
    """The path of a regular file, or UnreadableImage (missing, a folder, a pipe or device)."""
    try:
        return regular_file(Path(path).expanduser(), "image")
    except UnsafeFileError as exc:
        raise UnreadableImage(str(exc)) from None


def read_text_chunks(path: str | os.PathLike) -> tuple[TextChunks, tuple[int, int] | None, str]:
    """(metadata texts by key, image size, format) of an image file; raises UnreadableImage (one line)."""
    p = open_regular(path)
    walkers = ((lambda h: h[:8] == PNG_SIGNATURE, _png, "PNG"),
               (lambda h: h[:3] == b"\xff\xd8\xff", _jpeg, "JPEG"),
               (lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP", _webp, "WEBP"))
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
            for matches, walk, fmt in walkers:
                if matches(head):
                    chunks, size = walk(fh, p.name)
                    if size is None:  # a signature and nothing after it: not an image we can show
                        raise UnreadableImage(f"{p.name} is not an image this app can read (no {fmt} image header)")
                    return chunks, size, fmt
    except OSError as exc:
        raise UnreadableImage(f"Cannot read {p.name}: {exc.strerror or exc}") from None
    return _pillow(p)
