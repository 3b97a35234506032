"""Model discovery: scan the models folders, identify each entry, cache identifications by mtime."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from aigc_desktop.core.detect import MODEL_SUFFIXES, Identification, identify, unreadable


@dataclass(frozen=True)
class ModelInfo:
    path: str
    name: str
    kind: str
    family: str | None
    variant: str | None
    size: int
    note: str = ""
    native_size: int | None = None  # the image size a diffusion model was trained at, when known

    @property
    def label(self) -> str:
        bits = [b for b in (self.family, self.variant) if b]
        return f"{self.kind} ({', '.join(bits)})" if bits else self.kind

    @property
    def default_size(self) -> int:
        """The size a diffusion model makes best: what its folder says, else its family's (SDXL 1024, SD 512)."""
        return self.native_size or (1024 if self.family == "sdxl" else 512)

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "kind": self.kind, "family": self.family,
                "variant": self.variant, "size": self.size, "note": self.note}


_cache: dict[tuple[str, int, int], Identification] = {}
_cache_lock = threading.Lock()


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns)


def _size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:  # a dangling link, a file removed while scanning: size unknown
        return 0


def identify_cached(path: Path) -> Identification:
    try:
        key = _stamp(path)
    except OSError as exc:
        return unreadable(path, f"{path.name[:80]} could not be read: {exc.strerror or exc}")
    with _cache_lock:
        hit = _cache.get(key)
    if hit is None:
        hit = identify(path)
        with _cache_lock:
            _cache[key] = hit
    return hit


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a name longer than the file system allows
        return False


def info_for(path: str | Path) -> ModelInfo:
    """The model at `path`, identified; never raises for a bad file (kind 'unreadable' with the reason)."""
    path = Path(path).expanduser()
    exists = _exists(path)
    ident = identify_cached(path) if exists else identify(path)
    size = _size(path) if exists else 0
    try:
        name = path.name if path.is_dir() else path.stem
    except OSError:
        name = path.stem
    return ModelInfo(str(path), name, ident.kind, ident.family, ident.variant, size, ident.note,
                     native_size=ident.info.get("native_size"))


def _candidates(folder: Path, depth: int = 3) -> Iterable[Path]:
    """Model folders (with model_index.json or our json) and model files, not descending into models."""
    try:
        if not folder.is_dir():
            return
        children = sorted(folder.iterdir(), key=lambda p: p.name.lower())
    except OSError:
        return
    for child in children:
        if child.name.startswith("."):
            continue
        try:
            is_dir = child.is_dir()
            is_model_dir = is_dir and any((child / marker).exists() or (child / marker).is_symlink()
                                          for marker in ("model_index.json", "stylegan.json", "vae_morph.json"))
        except OSError:  # unreadable entry: listed if it looks like a model file, skipped otherwise
            is_dir = is_model_dir = False
        if is_model_dir:
            yield child
        elif is_dir:
            if depth > 0:
                yield from _candidates(child, depth - 1)
        elif child.suffix.lower() in MODEL_SUFFIXES:
            yield child  # FIFOs, sockets and devices too: identify() lists them as unreadable


def discover(folders: Iterable[str | Path]) -> list[ModelInfo]:
    """Every model under the given folders, identified. A bad file never stops discovery: it is listed as
    kind 'unreadable' with a one-line reason (info_for never raises for one)."""
    seen: set[str] = set()
    found: list[ModelInfo] = []
    for folder in folders:
        for path in _candidates(Path(folder).expanduser()):
            try:
                key = str(path.resolve())
            except (OSError, RuntimeError):  # a symlink loop
                key = str(path)
            if key in seen:
                continue
            seen.add(key)
            found.append(info_for(path))
    # Generators first, then add-ons (LoRA, VAE, embeddings), unreadable files last; by name within each.
    rank = {kind: i for i, kind in enumerate(GENERATOR_KINDS + ADDON_KINDS)}
    return sorted(found, key=lambda m: (rank.get(m.kind, len(rank)), m.name.lower()))


DIFFUSION_KINDS = ("diffusers", "checkpoint")
GENERATOR_KINDS = (*DIFFUSION_KINDS, "stylegan", "vae_morph")
ADDON_KINDS = ("lora", "vae", "embedding")
