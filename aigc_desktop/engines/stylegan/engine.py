"""The StyleGAN engine: StyleGANJob -> images (one per seed), StyleGANWalkJob -> an exported animation.

Every image renders on its own (batch of one), as NVIDIA's generate.py does, so an image never depends on
what else was in the job and its record regenerates it exactly.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aigc_desktop import __version__
from aigc_desktop.core.errors import CancelRequested
from aigc_desktop.core.jobs import (Emit, IsCancelled, JobResult, Preview, Status, StepReporter, StyleGANConvertJob,
                                    StyleGANJob, StyleGANWalkJob)
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.engines import device as devices
from aigc_desktop.engines.cache import ModelCache, default_budget_bytes
from aigc_desktop.engines.stylegan import loaders, sampling
from aigc_desktop.engines.stylegan.generator import Generator
from aigc_desktop.engines.stylegan.stylegan3 import input_transform

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    G: Generator
    path: str
    format: str
    device: torch.device
    _sha256: str | None = None

    def sha256(self) -> str:
        if self._sha256 is None:
            from aigc_desktop.core.hashing import sha256_file

            self._sha256 = sha256_file(self.path)
        return self._sha256

    def modules_for_size(self):  # engines.cache.module_bytes
        return [self.G]

    @property
    def name(self) -> str:
        p = Path(self.path)
        return p.name if p.is_dir() else p.stem


# One model cache per device in this process: the main queue's lane and the live view's lane (engines/host.py)
# each have a StyleGANEngine, and a model the user generates with and drags sliders on is loaded once.
# Sharing is safe: synthesis never writes to the generator (the SG3 transform is an argument).
_shared: dict[str, tuple[ModelCache, set[int]]] = {}
_shared_lock = threading.Lock()


def _join_cache(device: str, budget: int, user: int) -> ModelCache:
    with _shared_lock:
        cache, users = _shared.get(device) or (ModelCache(budget), set())
        users.add(user)
        _shared[device] = (cache, users)
        return cache


def _leave_caches(user: int) -> list[ModelCache]:
    """Drop `user` from every shared cache; the caches nobody uses any more (to be cleared)."""
    unused = []
    with _shared_lock:
        for device, (cache, users) in list(_shared.items()):
            users.discard(user)
            if not users:
                del _shared[device]
                unused.append(cache)
    return unused


class StyleGANEngine:
    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self._cache: ModelCache | None = None
        devices.configure_threads(self.options.threads)

    # -- models
    def model(self, spec: StyleGANJob, emit: Emit | None = None) -> LoadedModel:
        device = devices.resolve_device(spec.device if spec.device != "auto" else self.options.device)
        path = str(Path(spec.model.path).expanduser().resolve())
        key = (path, str(device))
        if self._cache is None:
            budget = int(self.options.memory_budget_gb * (1 << 30)) or default_budget_bytes(device)
            self._cache = _join_cache(str(device), budget, id(self))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if emit:
            emit(Status(job_id=spec.id, text=f"Loading {spec.model.name}…"))

        def load() -> LoadedModel:
            loaded = loaders.load_generator(path)
            return LoadedModel(loaded.G.to(device), path, loaded.format, device)

        return self._cache.get_or_load(key, load)

    def _force_fp32(self, spec: StyleGANJob, model: LoadedModel) -> bool:
        """The checkpoint's float16 layers run in float16 on CUDA unless fp32 is asked for."""
        dtype = spec.dtype if spec.dtype != "auto" else self.options.dtype
        return model.device.type != "cuda" or (dtype or "auto").lower() in ("fp32", "float32")

    # -- running
    def run(self, spec: StyleGANJob | StyleGANConvertJob, emit: Emit, cancelled: IsCancelled) -> JobResult:
        if isinstance(spec, StyleGANConvertJob):
            emit(Status(job_id=spec.id, text=f"Converting {spec.model.name}…"))
            out = loaders.convert(spec.model.path, spec.out)
            emit(Status(job_id=spec.id, text=f"Converted to {out}"))
            return JobResult(images=(), records=())
        model = self.model(spec, emit)
        if cancelled():
            raise CancelRequested()
        if isinstance(spec, StyleGANWalkJob):
            return self._walk(spec, model, emit, cancelled)
        reporter = StepReporter(spec.id, spec.total_steps, emit)
        transform = self._transform(spec, model)
        force_fp32 = self._force_fp32(spec, model)
        images: list[Any] = []
        records: list[dict[str, Any]] = []
        for i, seed in enumerate(spec.seeds):
            if cancelled():
                raise CancelRequested()
            latent = self._latent(spec, seed)
            ws = sampling.latent_ws(model.G, latent, model.device)
            img = sampling.synthesize(model.G, ws, spec.noise_mode, noise_seed=seed, transform=transform,
                                      force_fp32=force_fp32)
            image = sampling.to_pil(img)[0]
            reporter.advance()
            if spec.live:
                emit(Preview(job_id=spec.id, step=reporter.step, image=image, index=i))
                continue
            images.append(image)
            records.append(self.record(spec, model, seed, image, force_fp32))
        return JobResult(images=tuple(images), records=tuple(records))

    @staticmethod
    def _latent(spec: StyleGANJob, seed: int) -> sampling.Latent:
        mix_layers = spec.mix_layers if spec.mix_seed is not None else None
        return sampling.Latent(seed=int(seed), truncation_psi=float(spec.truncation_psi),
                               truncation_cutoff=spec.truncation_cutoff, class_idx=spec.class_idx,
                               mix_seed=spec.mix_seed, mix_layers=mix_layers)

    @staticmethod
    def _transform(spec: StyleGANJob, model: LoadedModel) -> torch.Tensor | None:
        """StyleGAN3's input transform: always the user's (the identity by default). NVIDIA's gen_images.py and
        visualizer overwrite the checkpoint's transform buffer the same way, so whatever a file left there
        is not part of the image a seed names."""
        if model.G.family != "stylegan3":
            return None
        return input_transform(tuple(spec.translate), spec.rotate).to(model.device)

    def _walk(self, spec: StyleGANWalkJob, model: LoadedModel, emit: Emit, cancelled: IsCancelled) -> JobResult:
        """A walk is a StyleGAN travel (engines/travel.py, the one interpolation path) on this engine's models."""
        from aigc_desktop.engines.travel import run_walk

        return run_walk(self, spec, emit, cancelled)

    def record(self, spec: StyleGANJob, model: LoadedModel, seed: int, image: Any, force_fp32: bool) -> dict[str, Any]:
        """Everything needed to regenerate the image exactly (stored as JSON in the PNG)."""
        G = model.G
        class_idx = spec.class_idx
        if G.c_dim and class_idx is None:
            class_idx = sampling.seed_class(seed, G.z_dim, G.c_dim)
        mix_layers = spec.mix_layers if spec.mix_seed is not None else None
        return {
            "app": "aigc-desktop",
            "app_version": __version__,
            "engine": "stylegan",
            "model": {"name": model.name, "file": Path(model.path).name, "path": model.path, "sha256": model.sha256(),
                      "kind": "stylegan", "format": model.format, "family": G.family,
                      "description": G.description, "z_dim": G.z_dim, "c_dim": G.c_dim, "num_ws": G.num_ws},
            "seed": int(seed),
            "z": "np.random.RandomState(seed).randn(1, z_dim)",
            "truncation_psi": float(spec.truncation_psi),
            "truncation_cutoff": spec.truncation_cutoff,
            "noise_mode": spec.noise_mode,
            "class_idx": class_idx,
            "mix_seed": spec.mix_seed if mix_layers else None,
            "mix_layers": mix_layers,
            "mix_layer_indices": sampling.mix_layer_indices(mix_layers, G) if mix_layers else [],
            "translate": [float(v) for v in spec.translate],
            "rotate": float(spec.rotate),
            "width": image.width,
            "height": image.height,
            "device": str(model.device),
            "dtype": "fp32" if force_fp32 else "mixed fp16",
        }

    def close(self) -> None:
        """Leave the shared cache; the last engine of a device to leave frees its models."""
        if self._cache is not None:
            self._cache = None
            for cache in _leave_caches(id(self)):
                cache.clear()
        devices.empty_cache()
