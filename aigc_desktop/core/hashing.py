"""SHA-256 of model files, cached by (path, size, mtime) so a 7 GB checkpoint is hashed once.

A1111 shows "Model hash" as the first 10 hex digits of the file's SHA-256 ("AutoV2"); LoRA hashes in
its metadata use the same short form. Diffusers folders are hashed over their weight files in order.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from aigc_desktop.core import paths

_lock = threading.Lock()
_memory: dict[str, dict] = {}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".pkl")


def _cache_path() -> Path:
    return paths.config_dir() / "hash_cache.json"


def _load_cache() -> dict[str, dict]:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict[str, dict]) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    return [path]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Full SHA-256 hex digest of a file, or of a model folder's weight files; cached."""
    p = Path(path).resolve()
    files = _files_of(p)
    stamp = [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    key = str(p)
    with _lock:
        if not _memory:
            _memory.update(_load_cache())
        hit = _memory.get(key)
        if hit and hit.get("stamp") == stamp:
            return hit["sha256"]
    digest = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    value = digest.hexdigest()
    with _lock:
        _memory[key] = {"stamp": stamp, "sha256": value}
        _save_cache(_memory)
    return value


def short_hash(sha256: str) -> str:
    """A1111's short model hash (AutoV2): the first 10 hex digits."""
    return sha256[:10]


def clear_memory_cache() -> None:
    with _lock:
        _memory.clear()
