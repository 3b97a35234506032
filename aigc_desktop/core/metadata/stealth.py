"""A1111 "stealth pnginfo": parameters hidden in the low bits of the pixels (the stealth-pnginfo extension).

The layout, as the extension writes and reads it: bits run down each column, columns left to right
(x outer, y inner). In alpha mode each pixel gives the low bit of its alpha; in RGB mode the low bits of
R, G and B in turn. The stream is a 15-byte signature (`stealth_pnginfo` / `stealth_pngcomp` in alpha,
`stealth_rgbinfo` / `stealth_rgbcomp` in RGB; *comp means gzip), a 32-bit big-endian length counted in
bits, then that many bits of UTF-8 (or gzip) text, each byte most significant bit first. Like the
extension, an RGB signature is looked for first, then an alpha one.

Reading needs the pixels, so the image's size is checked first (limits.STEALTH_MAX_PIXELS) and only the
columns that hold the stream are unpacked.
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

from aigc_desktop.core.metadata import limits
from aigc_desktop.core.safe_io import human_bytes

_SIGNATURES = {"rgb": {b"stealth_rgbinfo": False, b"stealth_rgbcomp": True},
               "alpha": {b"stealth_pnginfo": False, b"stealth_pngcomp": True}}
_SIG_BITS = 15 * 8
_HEAD_BITS = _SIG_BITS + 32


def _bits(pixels, mode: str, count: int):
    """The first `count` bits of the stream of `mode`, unpacking only the columns that hold them."""
    import numpy as np

    height = pixels.shape[0]
    per_pixel = 3 if mode == "rgb" else 1
    columns = min(pixels.shape[1], -(-count // (height * per_pixel)))
    part = pixels[:, :columns, :3] if mode == "rgb" else pixels[:, :columns, 3:4]
    return (np.ascontiguousarray(part.transpose(1, 0, 2)) & 1).reshape(-1)[:count]


def _payload(pixels, mode: str) -> tuple[bytes, bool] | None:
    import numpy as np

    available = pixels.shape[0] * pixels.shape[1] * (3 if mode == "rgb" else 1)
    if available < _HEAD_BITS:
        return None
    head = _bits(pixels, mode, _HEAD_BITS)
    compressed = _SIGNATURES[mode].get(np.packbits(head[:_SIG_BITS]).tobytes())
    if compressed is None:
        return None
    length = int("".join(map(str, head[_SIG_BITS:].tolist())), 2)
    if length > limits.STEALTH_MAX_BYTES * 8:
        raise ValueError(f"stealth metadata claims {human_bytes(length // 8)}, more than the "
                         f"{human_bytes(limits.STEALTH_MAX_BYTES)} allowed")
    if _HEAD_BITS + length > available:
        raise ValueError("stealth metadata is cut short (the image is smaller than its length says)")
    data = np.packbits(_bits(pixels, mode, _HEAD_BITS + length)[_HEAD_BITS:]).tobytes()
    return data, compressed


def read_stealth(path: Path, size: tuple[int, int] | None) -> tuple[str | None, str, str]:
    """(text or None, where it was found, problem) of an image's stealth metadata."""
    from PIL import Image

    import numpy as np

    if size and size[0] * size[1] > limits.STEALTH_MAX_PIXELS:
        return None, "", (f"stealth metadata not checked: {size[0]}x{size[1]} pixels is more than the "
                          f"{limits.STEALTH_MAX_PIXELS:,} decoded for it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "Corrupt EXIF data" and kin: the reader says what matters
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.mode not in ("RGB", "RGBA") or im.width * im.height > limits.STEALTH_MAX_PIXELS:
                    return None, "", ""
                pixels = np.asarray(im.convert(im.mode))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, OSError, ValueError, SyntaxError,
            EOFError, MemoryError) as exc:
        return None, "", f"stealth metadata not checked: the pixels could not be decoded ({type(exc).__name__})"
    if pixels.ndim != 3:
        return None, "", ""
    modes = ("rgb", "alpha") if pixels.shape[2] == 4 else ("rgb",)
    for mode in modes:
        try:
            found = _payload(pixels, mode)
        except ValueError as exc:
            return None, "", str(exc)
        if found is None:
            continue
        data, compressed = found
        where = f"stealth metadata in the {'alpha' if mode == 'alpha' else 'RGB'} low bits"
        if compressed:
            d = zlib.decompressobj(wbits=31)  # gzip
            try:
                data = d.decompress(data, limits.STEALTH_MAX_BYTES)
            except zlib.error:
                return None, where, f"{where}: the gzip data is broken"
            if d.unconsumed_tail:
                return None, where, (f"{where}: inflates to more than {human_bytes(limits.STEALTH_MAX_BYTES)}: "
                                     "skipped")
        try:
            return data.decode("utf-8"), where, ""
        except UnicodeDecodeError:
            return None, where, f"{where}: not UTF-8 text"
    return None, "", ""
