"""The one reader of safetensors headers: bounded, schema-checked, torch-free.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON, then the tensor data. The
JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data part)
and may hold "__metadata__": {str: str}. The format's own rules are checked here before anything trusts
the header: N at most 100 MiB (safetensors' own limit) and within the file, JSON with a depth and size limit,
every dtype known, every shape a list of non-negative whole numbers, every tensor's byte range as long as its
dtype and shape say, inside the file, and not overlapping another. Detection, the catalog, hashing and every
loader read headers through `read_header`, so a lying or hostile header is one line naming the file and
the field, never a MemoryError, a RecursionError or a traceback.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigc_desktop.core.errors import ModelLoadError
from aigc_desktop.core.safe_io import MiB, JsonLimitError, human_bytes, loads_json, regular_file

MAX_HEADER_BYTES = 100 * MiB  # safetensors' own reader refuses larger headers
MAX_DIMS = 16
# Bits per element of every dtype the format defines (sub-byte float formats included).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
FLOAT_DTYPES = frozenset({"F16", "F32", "F64", "BF16", "F8_E4M3", "F8_E5M2"})


class SafetensorsHeaderError(ModelLoadError, ValueError):
    """A safetensors file whose header is truncated, too large, not JSON, or breaks the format's schema."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte offsets in the data part (after the header)
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    name: str
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_start: int  # 8 + header length: where tensor data begins in the file
    file_size: int

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: t.shape for k, t in self.tensors.items()}

    def float_keys(self) -> set[str]:
        return {k for k, t in self.tensors.items() if t.dtype in FLOAT_DTYPES}

    def as_dict(self) -> dict[str, Any]:
        """The header in its JSON form (validated), as safetensors tools show it."""
        out: dict[str, Any] = {k: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [t.begin, t.end]}
                               for k, t in self.tensors.items()}
        if self.metadata:
            out["__metadata__"] = dict(self.metadata)
        return out


def _fail(name: str, text: str) -> SafetensorsHeaderError:
    return SafetensorsHeaderError(f"{name}: {text}")


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_header(path: str | os.PathLike, max_header: int = MAX_HEADER_BYTES,
                check_offsets: bool = True) -> SafetensorsHeader:
    """The validated header of a safetensors file. Only a regular file is opened; the header length is
    checked against `max_header` and the file size before it is read. `check_offsets=False` (estimates
    that only need shapes) skips the checks of tensors' byte ranges against their shapes and the file."""
    p = regular_file(path, "safetensors file")
    size = os.stat(p).st_size
    with open(p, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise _fail(p.name, "not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > max_header:
            raise _fail(p.name, f"not a safetensors file or corrupted: its header claims {human_bytes(n)}, more "
                                f"than the {human_bytes(max_header)} allowed")
        if 8 + n > size:
            raise _fail(p.name, f"truncated or not a safetensors file (a header of {n} bytes in a file of "
                                f"{size} bytes)")
        raw = fh.read(n)
    if len(raw) < n:
        raise _fail(p.name, "truncated while reading its header")
    return parse_header(raw, size, p.name, check_offsets)


def parse_header(raw: bytes, file_size: int, name: str = "safetensors file",
                 check_offsets: bool = True) -> SafetensorsHeader:
    """Validate header bytes (without the 8-byte length) of a file of `file_size` bytes."""
    if not raw[:1] == b"{":
        raise _fail(name, "corrupted safetensors header (it does not start with '{')")
    try:
        # Headers nest three levels ({name: {"shape": [...]}}); 8 leaves room and stops deep JSON at once.
        data = loads_json(bytes(raw).rstrip(b" "), what="header", max_bytes=MAX_HEADER_BYTES, max_depth=8)
    except JsonLimitError as exc:
        raise _fail(name, f"corrupted safetensors {exc}") from None
    if not isinstance(data, dict):
        raise _fail(name, "corrupted safetensors header (not a JSON object)")
    data_start = 8 + len(raw)
    available = file_size - data_start
    tensors: dict[str, TensorInfo] = {}
    metadata: dict[str, str] = {}
    for key, entry in data.items():
        if key == "__metadata__":
            metadata = _metadata(entry, name)
            continue
        tensors[key] = _tensor(key, entry, name, check_offsets)
    if not check_offsets:
        return SafetensorsHeader(name, tensors, metadata, data_start, file_size)
    ranges = sorted((t.begin, t.end, k) for k, t in tensors.items() if t.end > t.begin)
    previous_end, previous = 0, ""
    for begin, end, key in ranges:
        if begin < previous_end:
            raise _fail(name, f"corrupted safetensors header: tensors '{_cut(previous)}' and '{_cut(key)}' overlap")
        previous_end, previous = end, key
    if previous_end > available:
        raise _fail(name, f"truncated: {file_size} bytes, the header needs {data_start + previous_end}")
    return SafetensorsHeader(name, tensors, metadata, data_start, file_size)


def _cut(key: str, limit: int = 80) -> str:
    """A tensor name as a message shows it: control characters escaped (one line), long names cut."""
    key = key.encode("unicode_escape").decode("ascii") if not key.isprintable() else key
    return key if len(key) <= limit else key[: limit - 1] + "…"


def _metadata(entry: Any, name: str) -> dict[str, str]:
    if not isinstance(entry, dict):
        raise _fail(name, f"corrupted safetensors header: __metadata__ must be an object of strings, "
                          f"got {type(entry).__name__}")
    for k, v in entry.items():
        if not isinstance(v, str):
            raise _fail(name, f"corrupted safetensors header: __metadata__ '{_cut(k)}' must be a string, "
                              f"got {type(v).__name__}")
    return dict(entry)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(key: str, entry: Any, name: str, check_offsets: bool = True) -> TensorInfo:
    where = f"corrupted safetensors header: tensor '{_cut(key)}'"
    if not isinstance(entry, dict):
        raise _fail(name, f"{where} is a {type(entry).__name__}, not an object")
    for field in ("dtype", "shape", "data_offsets"):
        if field not in entry:
            raise _fail(name, f"{where} has no {field}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _fail(name, f"{where} has an unknown dtype {_short(dtype)}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_is_count(d) for d in shape):
        raise _fail(name, f"{where}: shape must be a list of at most {MAX_DIMS} whole numbers >= 0, "
                          f"got {_short(shape)}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise _fail(name, f"{where}: data_offsets must be [begin, end], got {_short(offsets)}")
    begin, end = offsets
    if end < begin:
        raise _fail(name, f"{where}: data_offsets end before they begin ({_short(begin)}, {_short(end)})")
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if check_offsets and (bits % 8 or bits // 8 != end - begin):
        need = f"{_short(bits // 8)} bytes" if bits % 8 == 0 else f"{_short(bits)} bits"
        raise _fail(name, f"{where}: {dtype} of shape {_short(shape)} needs {need}, "
                          f"its data_offsets give {_short(end - begin)}")
    return TensorInfo(dtype, tuple(shape), begin, end)
