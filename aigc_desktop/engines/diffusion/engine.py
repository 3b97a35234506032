"""The diffusion engine: turns a DiffusionJob into progress, previews and finished images.

A job runs batch by batch; each batch builds its mode's diffusers pipeline around the loaded model's modules
(modes.py) with a fresh scheduler, reads its input images once (images.py), draws noise per the seed contract
(noise.py), switches memory savings on as the free device memory requires (memory.py), and reports a cheap
preview every step (preview.py). Cancelling raises from the step callback: no further step, no decode.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any

import torch

from aigc_desktop import __version__
from aigc_desktop.core import hashing
from aigc_desktop.core.errors import CancelRequested, is_out_of_memory
from aigc_desktop.core.jobs import (DiffusionJob, Emit, IsCancelled, JobResult, Preview, Status,
                                    StepReporter)
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.engines import device as devices
from aigc_desktop.engines.cache import ModelCache, default_budget_bytes
from aigc_desktop.engines.diffusion import conditioning, decode, images, memory, modes
from aigc_desktop.engines.diffusion import noise as noise_lib
from aigc_desktop.engines.diffusion.loader import LoadedModel, load_model
from aigc_desktop.engines.diffusion.preview import PreviewStream
from aigc_desktop.engines.diffusion.schedulers import make_scheduler

log = logging.getLogger(__name__)


def initial_noise(seeds: list[int], shape: tuple[int, ...]) -> tuple[torch.Tensor, list[torch.Generator]]:
    """The seed contract: float32 noise from a CPU generator per image; the generators continue to the
    sampler (ancestral / SDE noise), exactly as diffusers does with a list of CPU generators."""
    gens = noise_lib.generators(seeds)
    return noise_lib.draw(gens, shape), gens


def estimate_bytes(path: Path, element_size: int) -> int:
    """Memory a model will take once loaded at `element_size` bytes per weight, from its files' headers
    (safetensors) or sizes (others), so the cache can make room before loading rather than after."""
    from aigc_desktop.core.errors import UserError
    from aigc_desktop.core.safetensors_header import read_header

    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    total = 0
    for f in files:
        if f.suffix == ".safetensors":
            try:
                header = read_header(f)  # the one checked reader; a bad file is the loader's to report
            except (UserError, OSError):
                continue
            total += sum(t.numel * element_size for t in header.tensors.values()
                         if t.dtype in ("F16", "BF16", "F32", "F64"))
        elif f.suffix in (".bin", ".ckpt", ".pt", ".pth"):
            total += f.stat().st_size * element_size // 4  # usually fp32 on disk
    return total


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
        estimate = estimate_bytes(Path(spec.model.path).expanduser(), torch.empty((), dtype=dtype).element_size())
        return cache.get_or_load(key, lambda: load_model(spec.model, device, dtype), estimate=estimate)

    # -- running
    def run(self, spec: DiffusionJob, emit: Emit, cancelled: IsCancelled) -> JobResult:
        p = spec.params
        model = self.model(spec, emit)
        if cancelled():
            raise CancelRequested()
        inputs = images.mode_inputs(p, modes.is_inpaint_unet(model.pipe))
        if inputs.note:
            emit(Status(job_id=spec.id, text=inputs.note))
        inputs_record = {"init_image": images.source_record(p.init_image), "mask": images.source_record(p.mask)}
        if model._sha256 is None and hashing.cached_sha256(model.ref.path) is None:
            # Records name the model by SHA-256; a multi-GB file takes a while the first time (cached after).
            emit(Status(job_id=spec.id, text=f"Hashing {model.name} for the image metadata (once per file)…"))
            model.sha256()
        reporter = StepReporter(spec.id, spec.total_steps, emit)
        seeds = p.image_seeds()
        variation_seeds = p.variation_seeds()
        out: list[Any] = []
        records: list[dict[str, Any]] = []
        try:
            with conditioning.prepared(model, p) as cond:
                for b in range(p.batch_count):
                    if cancelled():
                        raise CancelRequested()
                    batch = slice(b * p.batch_size, (b + 1) * p.batch_size)
                    made, plan = self._generate(spec, model, cond, inputs, seeds[batch],
                                                variation_seeds[batch] if variation_seeds else None,
                                                emit, cancelled, reporter, first_index=b * p.batch_size)
                    for i, image in enumerate(made):
                        index = b * p.batch_size + i
                        record = self.record(spec, model, seeds[index], index=index)
                        record.update(self._mode_record(p, inputs_record, variation_seeds, index, plan))
                        records.append({**record, **cond.record()})
                        out.append(image)
        except Exception as exc:
            if is_out_of_memory(exc):
                memory.note_out_of_memory(model.pipe)
            raise
        return JobResult(images=tuple(out), records=tuple(records))

    def _generate(self, spec: DiffusionJob, model: LoadedModel, cond: conditioning.Conditioning,
                  inputs: images.ModeInputs, seeds: list[int], variation_seeds: list[int] | None, emit: Emit,
                  cancelled: IsCancelled, reporter: StepReporter, first_index: int) -> tuple[list[Any], memory.MemoryPlan]:
        """One batch: a fresh scheduler and pipeline around the model's modules, one pipeline call."""
        p = spec.params
        n = len(seeds)
        captured: dict[str, torch.Tensor] = {}
        pipe = modes.build(model.pipe, model.family, inputs.pipeline, self._scheduler(p.scheduler, model, seeds, captured))
        job = memory.Workload(width=p.width, height=p.height, images=n, cfg=p.cfg_scale > 1.0,
                              element_size=torch.empty((), dtype=model.dtype).element_size())
        plan = memory.plan_for(pipe, model.device, self.options.offload, job)
        memory.apply(pipe, plan, model.device)
        vary = noise_lib.Variation(variation_seeds, p.variation_strength) if variation_seeds else noise_lib.identity
        gens = noise_lib.generators(seeds)

        def deliver(step: int, pictures: list[Any]) -> None:
            for i, image in enumerate(pictures):
                emit(Preview(job_id=spec.id, step=step, image=image, index=first_index + i))

        previews = PreviewStream(model.family, deliver, vae=pipe.vae)  # colours fitted to this VAE
        switch = cond.step_switch(n)  # prompt editing / alternation: other embeddings from some step on
        kwargs: dict[str, Any] = dict(
            **cond.pipeline_kwargs(n), num_inference_steps=p.steps, guidance_scale=p.cfg_scale, width=p.width,
            height=p.height, generator=gens, output_type="pil",
            callback_on_step_end=self._step_callback(spec, cancelled, reporter, previews, captured, switch))
        if switch is not None:
            kwargs["callback_on_step_end_tensor_inputs"] = switch.tensor_inputs
        if inputs.pipeline == "txt2img":
            scale = pipe.vae_scale_factor
            shape = (pipe.unet.config.in_channels, p.height // scale, p.width // scale)
            # Drawn here with the same generators and order as diffusers, so the variation can act on it.
            device = pipe._execution_device if plan.offload else model.device
            kwargs["latents"] = vary(noise_lib.draw(gens, shape)).to(device, model.dtype)
        else:
            modes.route_noise(pipe, vary)
            kwargs.update(image=inputs.image, strength=inputs.strength)
            if inputs.pipeline == "inpaint":
                kwargs.update(mask_image=inputs.mask, padding_mask_crop=inputs.crop_padding)
        def retry_note() -> None:
            emit(Status(job_id=spec.id, text="The VAE gave invalid values in half precision; decoding again in float32"))

        with decode.finite_decode(pipe.vae, retry_note):  # NaN/Inf: float32 once, else fail (never black)
            made = list(pipe(**kwargs).images)
        previews.finish()
        if inputs.overlay:
            made = modes.paste_over(pipe, inputs.mask, inputs.image, made)
        return made, plan

    @staticmethod
    def _step_callback(spec: DiffusionJob, cancelled: IsCancelled, reporter: StepReporter, previews: PreviewStream,
                       captured: dict[str, torch.Tensor], switch: conditioning.StepSwitch | None = None):
        per_batch = spec.total_steps // max(1, spec.params.batch_count)
        base = reporter.step

        def on_step_end(pipe, i: int, timestep, kwargs: dict[str, Any]) -> dict[str, Any]:
            if cancelled():
                # Raising here stops before the next UNet call and skips the VAE decode.
                raise CancelRequested()
            if switch is not None:
                switch(pipe, i, kwargs)  # the next UNet call's text embeddings
            # Second-order samplers (Heun, DPM++ SDE) call back twice per step: map onto the user's steps.
            done = base + math.ceil((i + 1) * per_batch / max(1, pipe.num_timesteps))
            latents = captured.pop("x0", None)
            if done <= reporter.step:
                return kwargs
            reporter.advance(done - reporter.step)
            previews.add(kwargs["latents"] if latents is None else latents, reporter.step)
            return kwargs

        return on_step_end

    def _scheduler(self, name: str, model: LoadedModel, seeds: list[int], captured: dict[str, torch.Tensor]):
        scheduler = make_scheduler(name, model.scheduler_config, seeds=seeds)
        step = scheduler.step

        @functools.wraps(step)  # pipelines inspect step()'s signature to decide whether to pass `generator`
        def capturing_step(*args, **kwargs):
            # Keep the scheduler's x0 prediction (when it gives one) for a cleaner preview.
            out = step(*args, **kwargs)
            x0 = getattr(out, "pred_original_sample", None)
            if x0 is None and isinstance(out, tuple) and len(out) > 1 and isinstance(out[1], torch.Tensor):
                x0 = out[1]  # return_dict=False: (prev_sample, pred_original_sample)
            if x0 is not None:
                captured["x0"] = x0
            return out

        scheduler.step = capturing_step
        return scheduler

    @staticmethod
    def _mode_record(p, inputs_record: dict[str, Any], variation_seeds: list[int] | None, index: int,
                     plan: memory.MemoryPlan) -> dict[str, Any]:
        """The mode's part of an image record: inputs (by hash), strength, mask options, variation."""
        rec: dict[str, Any] = {"batch_size": p.batch_size, "batch_count": p.batch_count}
        if p.mode != "txt2img":
            rec.update(strength=p.strength, init_image=inputs_record["init_image"])
        if p.mode in ("inpaint", "outpaint"):
            rec.update(mask_blur=p.mask_blur, inpaint_only_masked=p.inpaint_only_masked,
                       inpaint_padding=p.inpaint_padding)
        if p.mode == "inpaint":
            rec["mask"] = inputs_record["mask"]
        if p.mode == "outpaint":
            rec["outpaint"] = list(p.outpaint)
        if variation_seeds:
            rec.update(variation_seed=variation_seeds[index], variation_strength=p.variation_strength)
        if plan.level != "plain":
            rec["memory_savings"] = plan.level  # VAE tiling changes pixels slightly
        return rec

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
