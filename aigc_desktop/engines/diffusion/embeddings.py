"""Textual-inversion embeddings: find them, load them safely, check they fit the model.

As in A1111, an embedding is triggered by its file stem appearing in a prompt ("easynegative" for
`embeddings/easynegative.safetensors`). Files live in an `embeddings` folder under any models folder,
anywhere the model catalog identifies an embedding, or at a path the job names explicitly.

Layouts read: A1111 `.pt` (`string_to_param: {"*": tensor}`), `emb_params`, a diffusers concept
(`{"<token>": tensor}`), and SDXL's `clip_l` / `clip_g` pair. `.pt`/`.bin` go through
`torch.load(weights_only=True)`, never a plain unpickle.
"""

from __future__ import annotations

import pickle
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from aigc_desktop.core import catalog, torch_files
from aigc_desktop.core.errors import ModelLoadError, UserError, first_line
from aigc_desktop.core.safe_io import check_size, file_size, regular_file
from aigc_desktop.core.safetensors_header import read_header

SUFFIXES = (".safetensors", ".pt", ".bin")
FOLDER_NAME = "embeddings"
SINGLE = "clip"  # the vectors of a one-encoder (SD 1.x / 2.x) embedding
_WIDTH_FAMILY = {768: "SD 1.x", 1024: "SD 2.x"}


@dataclass(frozen=True)
class Embedding:
    name: str
    path: str
    vectors: dict[str, torch.Tensor]  # SINGLE, or "clip_l" and "clip_g" for SDXL; each (count, width)

    @property
    def count(self) -> int:
        return max(v.shape[0] for v in self.vectors.values())

    def made_for(self) -> str:
        if "clip_g" in self.vectors:
            return "SDXL"
        width = next(iter(self.vectors.values())).shape[-1]
        return _WIDTH_FAMILY.get(width, f"a text encoder of width {width}")

    def for_encoder(self, key: str, width: int) -> torch.Tensor:
        """The vectors for the encoder `key` ("clip_l" / "clip_g" on SDXL, SINGLE otherwise) of `width`."""
        vectors = self.vectors.get(key)
        if vectors is None and key != SINGLE:
            raise UserError(f"Embedding '{self.name}' is for {self.made_for()}; an SDXL model needs an embedding "
                            "with clip_l and clip_g vectors (remove the word from the prompt)")
        if vectors is None:
            raise UserError(f"Embedding '{self.name}' is for SDXL; this model has one text encoder of width {width}")
        if vectors.shape[-1] != width:
            raise UserError(f"Embedding '{self.name}' is for {self.made_for()} (width {vectors.shape[-1]}); "
                            f"this model's text encoder has width {width}")
        return vectors


MAX_FILE_BYTES = 100 * 1024 * 1024  # embeddings are a few KiB (a few vectors); a checkpoint here is a mistake


def _check(path: Path) -> None:
    """Regular file of an embedding's size, and a header or archive within its limits, before reading."""
    check_size(file_size(path, "embedding"), MAX_FILE_BYTES, f"Embedding {path.name}")
    if path.suffix.lower() == ".safetensors":
        read_header(path)
    elif torch_files.check_archive(path) is None:
        torch_files.check_legacy_storages(path)


def _read(path: Path) -> dict:
    _check(path)
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return _as_dict(load_file(str(path), device="cpu"), path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "pickle protocol 4 ..." notes from the weights-only unpickler
            try:
                data = torch.load(str(path), map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as first:  # retried once with one more allowed container
                # The original textual-inversion repo stored a ParameterDict; allow only that class besides tensors.
                if "ParameterDict" not in str(first):
                    raise
                with torch.serialization.safe_globals([torch.nn.ParameterDict]):
                    data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        names = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(exc))))
        what = f"its pickle names {', '.join(names[:3])}, which could run code" if names else "it holds more than tensors"
        raise ModelLoadError(f"Could not read embedding {path.name}: refused, {what}; only tensors are loaded "
                             "from .pt files (use a .safetensors copy)") from None
    except MemoryError:
        raise ModelLoadError(f"Could not read embedding {path.name}: it asks for more memory than this machine "
                             "has (damaged or forged)") from None
    except Exception as exc:  # noqa: BLE001 - any read failure is one line for the user
        raise ModelLoadError(f"Could not read embedding {path.name}: {first_line(exc)}") from None
    return _as_dict(data, path)


def _as_dict(data: object, path: Path) -> dict:
    if not isinstance(data, dict):
        raise ModelLoadError(f"Embedding {path.name} holds a {type(data).__name__}, not a dict of tensors")
    return data


def _as_matrix(value, path: Path) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dim() not in (1, 2) or not value.is_floating_point():
        raise ModelLoadError(f"Embedding {path.name} does not hold a vector or a matrix of vectors")
    value = value.detach().to(torch.float32)
    return value.unsqueeze(0) if value.dim() == 1 else value


def load_embedding(path: str | Path, name: str | None = None) -> Embedding:
    path = Path(path)
    data = _read(path)
    if "clip_l" in data and "clip_g" in data:
        vectors = {"clip_l": _as_matrix(data["clip_l"], path), "clip_g": _as_matrix(data["clip_g"], path)}
    elif "string_to_param" in data:
        params = data["string_to_param"]
        params = dict(getattr(params, "_parameters", params))
        if len(params) != 1:
            raise ModelLoadError(f"Embedding {path.name} holds {len(params)} vector sets; expected one")
        vectors = {SINGLE: _as_matrix(next(iter(params.values())), path)}
    elif "emb_params" in data:
        vectors = {SINGLE: _as_matrix(data["emb_params"], path)}
    elif len(data) == 1 and isinstance(next(iter(data.values())), torch.Tensor):
        vectors = {SINGLE: _as_matrix(next(iter(data.values())), path)}  # a diffusers concept
    else:
        raise ModelLoadError(f"{path.name} is not a textual-inversion embedding (keys: "
                             f"{', '.join(sorted(map(str, data))[:4])})")
    return Embedding(name or path.stem, str(path), vectors)


_cache: dict[tuple[str, int, int], Embedding] = {}
_cache_lock = threading.Lock()


def load_cached(path: str | Path, name: str | None = None) -> Embedding:
    """load_embedding, remembered by path, size and mtime (embeddings are tiny; used again and again)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is None:
        hit = load_embedding(path, name)
        with _cache_lock:
            _cache[key] = hit
    return hit


def _files_under(folder: Path) -> Iterable[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def available(search_dirs: Iterable[str | Path], explicit: Iterable[str | Path] = ()) -> dict[str, Path]:
    """Embedding name (file stem) -> file. Explicit files win over `embeddings` folders, which win over
    embeddings the catalog finds elsewhere in the models folders."""
    dirs = [Path(d).expanduser() for d in search_dirs]
    found: dict[str, Path] = {}
    for info in catalog.discover(dirs):
        if info.kind == "embedding":
            found[Path(info.path).stem] = Path(info.path)
    for d in dirs:
        for sub in (d / FOLDER_NAME, d / FOLDER_NAME.capitalize()):
            for path in _files_under(sub):
                found[path.stem] = path
    for item in explicit:
        path = Path(item).expanduser()
        if not path.exists() and not path.is_symlink():
            raise UserError(f"Embedding file not found: {path}")
        found[path.stem] = regular_file(path, "embedding")
    return found
