"""Model file hashes, cached by (path, size, mtime) so a 7 GB checkpoint is hashed once.

Hashes other tools show, so images they made can be matched to the user's files:

- `sha256_file`: SHA-256 of the whole file. A1111's "Model hash" is its first 10 hex digits ("AutoV2").
  A diffusers folder is hashed over its weight files in path order (our own convention).
- `addnet_sha256`: SHA-256 of a safetensors file's tensor data, header excluded (kohya / additional-networks).
  A1111's "Lora hashes" show its first 12 hex digits; editing a LoRA's metadata does not change it.
- `legacy_model_hash`: A1111's pre-2023 8-digit hash (64 KiB read at offset 1 MiB); cheap, never cached.

The cache lives in memory and in `hash_cache.json` in the config folder. An entry is used only while every
hashed file keeps its size and modification time; a file that changes while it is hashed is not cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Callable

from aigc_desktop.core import paths
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.files import atomic_write
from aigc_desktop.core.safe_io import load_json_file, regular_file
from aigc_desktop.core.safetensors_header import read_header

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

_lock = threading.Lock()
_memory: dict[str, dict] = {}
_loaded = False
_in_flight: dict[str, threading.Lock] = {}  # one hashing thread per key; the others wait for its result
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".pkl")
_CHUNK = 1 << 20


def _cache_path() -> Path:
    return paths.config_dir() / "hash_cache.json"


def _load_cache() -> dict[str, dict]:
    if not _cache_path().exists():
        return {}
    try:
        data = load_json_file(_cache_path(), "hash cache")
    except (OSError, UserError):  # a broken cache only costs time
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("sha256"), str)}


def _save_cache(cache: dict[str, dict]) -> None:
    # Entries of files that no longer exist are dropped, so the file does not grow forever.
    keep = {k: v for k, v in cache.items() if all(os.path.exists(s[0]) for s in v.get("stamp", []))}
    path = _cache_path()
    try:
        atomic_write(path, json.dumps(keep))
    except OSError:
        pass  # a cache that cannot be written only costs time


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _memory.update({k: v for k, v in _load_cache().items() if k not in _memory})
        _loaded = True


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    return [path]


def _stamp(files: list[Path]) -> list[list]:
    out = []
    for f in files:
        st = f.stat()
        out.append([str(f), st.st_size, st.st_mtime_ns])
    return out


def _safetensors_data_offset(path: Path) -> int:
    """Where a safetensors file's tensor data starts (8-byte length + JSON header), from the checked header.
    Raises SafetensorsHeaderError (a ValueError) for a file that is not a valid safetensors file."""
    return read_header(path).data_start


def _hash_files(files: list[Path], offset: int = 0, progress: Progress | None = None) -> str:
    """SHA-256 over the files' bytes (from `offset` in each), concatenated in order."""
    digest = hashlib.sha256()
    total = sum(max(0, f.stat().st_size - offset) for f in files)
    done = 0
    for f in files:
        with open(regular_file(f, "model file"), "rb") as fh:  # never a FIFO or a device
            if offset:
                fh.seek(offset)
            while block := fh.read(_CHUNK):
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
    return digest.hexdigest()


def _cached(kind: str, path: str | os.PathLike, compute: Callable[[list[Path]], str]) -> str:
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    key = f"{kind}:{p}" if kind else str(p)
    files = _files_of(p)
    stamp = _stamp(files)
    with _lock:
        _ensure_loaded()
        hit = _memory.get(key)
        if hit and hit.get("stamp") == stamp:
            return hit["sha256"]
        gate = _in_flight.setdefault(key, threading.Lock())
    with gate:
        with _lock:  # another thread may have finished the same file while this one waited
            hit = _memory.get(key)
            if hit and hit.get("stamp") == stamp:
                return hit["sha256"]
        value = compute(files)
        if _stamp(files) == stamp:  # unchanged while hashing: safe to remember
            with _lock:
                _memory[key] = {"stamp": stamp, "sha256": value}
                _save_cache(dict(_memory))
    return value


def sha256_file(path: str | os.PathLike, progress: Progress | None = None) -> str:
    """Full SHA-256 hex digest of a file, or of a model folder's weight files; cached."""
    return _cached("", path, lambda files: _hash_files(files, 0, progress))


def addnet_sha256(path: str | os.PathLike, progress: Progress | None = None) -> str:
    """SHA-256 of a safetensors file's tensor data (header excluded), as kohya and A1111 hash LoRAs; cached.

    Raises ValueError for a file that is not a safetensors file.
    """
    p = Path(path)
    if p.suffix.lower() != ".safetensors" or p.is_dir():
        raise ValueError(f"{p.name} is not a .safetensors file")
    return _cached("addnet", p, lambda files: _hash_files(files, _safetensors_data_offset(files[0]), progress))


def lora_short_hash(path: str | os.PathLike) -> str:
    """The 12-digit hash A1111 writes in "Lora hashes" (the addnet hash; full-file hash for non-safetensors)."""
    p = Path(path)
    if p.suffix.lower() == ".safetensors":
        return addnet_sha256(p)[:12]
    return sha256_file(p)[:12]


def legacy_model_hash(path: str | os.PathLike) -> str:
    """A1111's old 8-digit model hash: SHA-256 of 64 KiB read at offset 1 MiB (collides easily)."""
    digest = hashlib.sha256()
    with open(regular_file(path, "model file"), "rb") as fh:
        fh.seek(0x100000)
        digest.update(fh.read(0x10000))
    return digest.hexdigest()[:8]


def cached_sha256(path: str | os.PathLike) -> str | None:
    """The full SHA-256 if it is cached and still valid; never hashes (cheap enough to ask for every model)."""
    try:
        p = Path(path).expanduser().resolve()
        stamp = _stamp(_files_of(p))
    except OSError:
        return None
    with _lock:
        _ensure_loaded()
        hit = _memory.get(str(p))
    return hit["sha256"] if hit and hit.get("stamp") == stamp else None


def short_hash(sha256: str) -> str:
    """A1111's short model hash (AutoV2): the first 10 hex digits."""
    return sha256[:10]


def clear_memory_cache() -> None:
    """Forget the in-memory cache; the next lookup reads the cache file again."""
    global _loaded
    with _lock:
        _memory.clear()
        _loaded = False
