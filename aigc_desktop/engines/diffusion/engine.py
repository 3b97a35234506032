"""The diffusion engine: turns a DiffusionJob into progress, previews and finished images."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import torch

from aigc_desktop import __version__
from aigc_desktop.core.errors import CancelRequested
from aigc_desktop.core.jobs import (DiffusionJob, Emit, IsCancelled, JobResult, Preview, Status,
                                    StepReporter)
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.engines import device as devices
from aigc_desktop.engines.cache import ModelCache, default_budget_bytes
from aigc_desktop.engines.diffusion import conditioning
from aigc_desktop.engines.diffusion.loader import LoadedModel, load_model
from aigc_desktop.engines.diffusion.preview import latents_to_rgb
from aigc_desktop.engines.diffusion.schedulers import make_scheduler

log = logging.getLogger(__name__)


def initial_noise(seeds: list[int], shape: tuple[int, ...]) -> tuple[torch.Tensor, list[torch.Generator]]:
    """The seed contract: float32 noise from a CPU generator per image; the generators continue to the
    sampler (ancestral / SDE noise), exactly as diffusers does with a list of CPU generators."""
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    noise = torch.cat([torch.randn((1, *shape), generator=g, dtype=torch.float32) for g in generators])
    return noise, generators


class DiffusionEngine:
    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self._cache: ModelCache | None = None
        devices.configure_threads(self.options.threads)

    # -- models
    def _cache_for(self, device: torch.device) -> ModelCache:
        if self._cache is None:
            budget = int(self.options.memory_budget_gb * (1 << 30)) or default_budget_bytes(device)
            self._cache = ModelCache(budget)
        return self._cache

    def model(self, spec: DiffusionJob, emit: Emit | None = None) -> LoadedModel:
        device = devices.resolve_device(spec.device if spec.device != "auto" else self.options.device)
        dtype = devices.resolve_dtype(device, spec.dtype if spec.dtype != "auto" else self.options.dtype)
        key = (str(Path(spec.model.path).expanduser().resolve()), spec.model.vae, spec.model.family,
               spec.model.prediction_type, str(device), str(dtype))
        cache = self._cache_for(device)
        hit = cache.get(key)
        if hit is not None:
            return hit
        if emit:
            emit(Status(job_id=spec.id, text=f"Loading {spec.model.name}…"))
        return cache.get_or_load(key, lambda: load_model(spec.model, device, dtype))

    # -- running
    def run(self, spec: DiffusionJob, emit: Emit, cancelled: IsCancelled) -> JobResult:
        p = spec.params
        model = self.model(spec, emit)
        if cancelled():
            raise CancelRequested()
        reporter = StepReporter(spec.id, spec.total_steps, emit)
        images: list[Any] = []
        records: list[dict[str, Any]] = []
        seeds = p.image_seeds()
        with conditioning.prepared(model, p) as cond:
            for b in range(p.batch_count):
                batch_seeds = seeds[b * p.batch_size:(b + 1) * p.batch_size]
                out = self._txt2img(spec, model, cond, batch_seeds, emit, cancelled, reporter,
                                    first_index=b * p.batch_size)
                for i, (image, seed) in enumerate(zip(out, batch_seeds)):
                    images.append(image)
                    records.append({**self.record(spec, model, seed, index=b * p.batch_size + i), **cond.record()})
        return JobResult(images=tuple(images), records=tuple(records))

    def _step_callback(self, spec: DiffusionJob, model: LoadedModel, emit: Emit, cancelled: IsCancelled,
                       reporter: StepReporter, first_index: int, captured: dict[str, torch.Tensor]):
        def on_step_end(pipe, step: int, timestep, kwargs: dict[str, Any]) -> dict[str, Any]:
            if cancelled():
                # Raising here stops before the next UNet call and skips the VAE decode.
                raise CancelRequested()
            reporter.advance()
            latents = captured.pop("x0", None)
            if latents is None:
                latents = kwargs["latents"]
            for i, image in enumerate(latents_to_rgb(latents, model.family)):
                emit(Preview(job_id=spec.id, step=reporter.step, image=image, index=first_index + i))
            return kwargs

        return on_step_end

    def _scheduler(self, spec: DiffusionJob, model: LoadedModel, seed: int, captured: dict[str, torch.Tensor]):
        scheduler = make_scheduler(spec.params.scheduler, model.scheduler_config, seed=seed)
        step = scheduler.step

        @functools.wraps(step)  # pipelines inspect step()'s signature to decide whether to pass `generator`
        def capturing_step(*args, **kwargs):
            # Keep the scheduler's x0 prediction (when it gives one) for a cleaner preview.
            out = step(*args, **kwargs)
            x0 = getattr(out, "pred_original_sample", None)
            if x0 is not None:
                captured["x0"] = x0
            return out

        scheduler.step = capturing_step
        return scheduler

    def _txt2img(self, spec: DiffusionJob, model: LoadedModel, cond: conditioning.Conditioning,
                 seeds: list[int], emit: Emit,
                 cancelled: IsCancelled, reporter: StepReporter, first_index: int) -> list[Any]:
        p = spec.params
        pipe = model.pipe
        captured: dict[str, torch.Tensor] = {}
        scheduler = self._scheduler(spec, model, seeds[0], captured)
        run_pipe = type(pipe)(**{**pipe.components, "scheduler": scheduler})
        run_pipe.set_progress_bar_config(disable=True)
        scale = run_pipe.vae_scale_factor
        channels = run_pipe.unet.config.in_channels
        shape = (channels, p.height // scale, p.width // scale)
        noise, generators = initial_noise(seeds, shape)
        n = len(seeds)
        result = run_pipe(
            **cond.pipeline_kwargs(n),
            num_inference_steps=p.steps,
            guidance_scale=p.cfg_scale,
            width=p.width,
            height=p.height,
            generator=generators,
            latents=noise.to(model.device, model.dtype),
            callback_on_step_end=self._step_callback(spec, model, emit, cancelled, reporter, first_index, captured),
            output_type="pil",
        )
        return list(result.images)

    def record(self, spec: DiffusionJob, model: LoadedModel, seed: int, index: int) -> dict[str, Any]:
        """Everything needed to regenerate one image exactly (stored as JSON in the PNG)."""
        p = spec.params
        return {
            "app": "aigc-desktop",
            "app_version": __version__,
            "engine": "diffusion",
            "mode": p.mode,
            "model": {"name": model.name, "file": Path(model.ref.path).name, "path": model.ref.path,
                      "sha256": model.sha256(), "family": model.family, "kind": model.ref.kind,
                      "vae": model.ref.vae, "prediction_type": model.scheduler_config.get("prediction_type")},
            "prompt": p.prompt,
            "negative_prompt": p.negative_prompt,
            "seed": seed,
            "base_seed": p.seed,
            "batch_index": index,
            "steps": p.steps,
            "cfg_scale": p.cfg_scale,
            "width": p.width,
            "height": p.height,
            "scheduler": p.scheduler,
            "clip_skip": p.clip_skip,
            "device": str(model.device),
            "dtype": devices.dtype_name(model.dtype),
        }

    def close(self) -> None:
        if self._cache is not None:
            self._cache.clear()
        devices.empty_cache()
