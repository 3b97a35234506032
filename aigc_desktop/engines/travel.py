"""Travels on the one interpolation core (core/interpolate.py): TravelJob -> frames, one TravelFrame each.

- VAE morph: keyframe images, resized and center-cropped to one size, encoded to their latent MEAN (so frames
  are deterministic) by the morph VAE (`vae_morph.json` folders, e.g. the bundled emoji-morph-vae) or an SD
  AutoencoderKL (a diffusers folder's vae/, a standalone VAE file, a checkpoint's VAE); every frame decodes the
  interpolated latent. Frame t = 0 decodes keyframe a's own latent: it is a's reconstruction exactly.
- Diffusion travel: keyframes of (prompt, seed). The initial noise is slerped (the whole latent as one vector)
  and the text embeddings, A1111-weighted by engines/diffusion/conditioning.py, are lerped; every frame runs
  the same model, scheduler, steps and CFG as a plain generation, through the same diffusers pipeline with the
  same CPU generator: a keyframe's frame IS the plain image of its prompt and seed. Ancestral / SDE samplers
  also draw noise while sampling; an in-between frame takes that from the nearer keyframe's seed (use a
  deterministic sampler such as euler or dpmpp_2m for the smoothest travels). `strength` > 0 ties in-between
  frames to the keyframes: each starts (img2img) from the cross-fade of its two keyframes' images.
- StyleGAN travel: keyframe seeds, lerp in W (mode "lerp") or slerp in Z (mode "slerp", truncation applied per
  frame with psi eased between the keyframes'); a keyframe's frame is the seed's own image.

Frames render in the order the job lists (the UI asks coarse-first and leaves out what it has cached), one
frame per distinct cache key; `out` writes the whole animation (engines/export.py).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc_desktop import __version__
from aigc_desktop.core import interpolate as ip
from aigc_desktop.core.errors import CancelRequested, ModelLoadError, UserError, first_line
from aigc_desktop.core.jobs import (DiffusionJob, Emit, IsCancelled, JobResult, ModelRef, Preview, Status,
                                    StepReporter, StyleGANJob, StyleGANWalkJob, TravelFrame, TravelJob)
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.engines import device as devices
from aigc_desktop.engines.cache import ModelCache, default_budget_bytes

log = logging.getLogger(__name__)

BACKGROUND = (236, 236, 236)  # transparent pixels: the emoji training background (training/dataset.py)


# ---------------------------------------------------------------------------------------------- images


def keyframe_image(spec: TravelJob, timeline: ip.Timeline, i: int):
    """Keyframe i's picture: the PIL image the job carries, else the keyframe's file."""
    from PIL import Image

    image = spec.images[i] if i < len(spec.images) else None
    if image is None:
        source = timeline.keyframes[i].image
        if not source:
            raise UserError(f"Keyframe {i + 1} has no image")
        from aigc_desktop.engines.diffusion.images import read_image

        image = read_image(source, what=f"keyframe {i + 1}")
    if not isinstance(image, Image.Image):
        raise UserError(f"Keyframe {i + 1}: not an image")
    return image


def fit(image, size: tuple[int, int]):
    """RGB of `size`: transparency over the background, the largest centered crop of the right shape, resized."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        base.alpha_composite(rgba)
        image = base
    image = image.convert("RGB")
    w, h = image.size
    aspect = size[0] / size[1]
    cw, ch = (round(h * aspect), h) if w / h > aspect else (w, round(w / aspect))  # the largest centered box
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch)).resize(size, Image.Resampling.LANCZOS)


def to_tensor(image) -> torch.Tensor:
    """PIL RGB -> [1, 3, H, W] float32 in [-1, 1]."""
    a = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)[None]
    return a.float() / 127.5 - 1.0


def to_image(x: torch.Tensor):
    """[1, 3, H, W] in [-1, 1] -> PIL RGB, rounding as (x + 1) * 127.5."""
    from PIL import Image

    a = ((x[0].detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(a.permute(1, 2, 0).numpy(), "RGB")


# ---------------------------------------------------------------------------------------------- VAE


class LoadedVae:
    def __init__(self, module: Any, kind: str, path: str, device: torch.device, resolution: int | None) -> None:
        self.module, self.kind, self.path, self.device, self.resolution = module, kind, path, device, resolution

    def modules_for_size(self):  # engines.cache.module_bytes
        return [self.module]

    @property
    def name(self) -> str:
        p = Path(self.path)
        return p.name if p.is_dir() else p.stem

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent MEAN (no sampling): the same image always gives the same latent."""
        x = x.to(self.device)
        if self.kind == "morph":
            return self.module.encode(x)[0]
        return self.module.encode(x).latent_dist.mean

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "morph":
            return self.module.decode(z)
        return self.module.decode(z).sample


def load_vae(ref: ModelRef, device: torch.device) -> LoadedVae:
    """The morph VAE of a vae_morph.json folder, or an AutoencoderKL: a standalone VAE file (ref.vae or the
    model itself), a diffusers folder's vae/, or a checkpoint's VAE."""
    path = Path(ref.vae or ref.path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"Model not found: {path}")
    if path.is_dir() and (path / "vae_morph.json").is_file():
        from aigc_desktop.engines.vae_morph import load_morph_vae

        vae = load_morph_vae(path, device)
        return LoadedVae(vae, "morph", str(path), device, vae.config.resolution)
    if path.is_dir() and (path / "vae" / "config.json").is_file():
        from diffusers import AutoencoderKL

        try:
            module = AutoencoderKL.from_pretrained(str(path), subfolder="vae", torch_dtype=torch.float32)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"Could not load the VAE of {path.name}: {first_line(exc)}") from exc
        return LoadedVae(module.to(device).eval().requires_grad_(False), "kl", str(path), device, None)
    if path.is_file():
        from aigc_desktop.engines.diffusion.single_file import load_vae as load_vae_file

        module = load_vae_file(path, ref.family or "sd1", torch.float32)
        return LoadedVae(module.to(device).eval().requires_grad_(False), "kl", str(path), device, None)
    raise ModelLoadError(f"{path.name} is not a VAE: choose a morph VAE folder, an SD model or a VAE file")


class VaeMorph:
    def __init__(self, engine: "TravelEngine", spec: TravelJob, timeline: ip.Timeline, emit: Emit) -> None:
        self.spec, self.timeline = spec, timeline
        self.vae = engine.vae(spec, emit)
        pictures = [keyframe_image(spec, timeline, i) for i in range(len(timeline.keyframes))]
        self.size = self._size(pictures)
        self.latents = [self.vae.encode(to_tensor(fit(p, self.size))) for p in pictures]
        # slerp per latent vector (the morph VAE's one vector per image); an SD latent map is one vector.
        self.axis: int | None = -1 if self.vae.kind == "morph" else None

    def _size(self, pictures: list[Any]) -> tuple[int, int]:
        want = self.spec.size
        if self.vae.resolution is not None:
            if want is not None and want != self.vae.resolution:
                raise UserError(f"{self.vae.name} works on {self.vae.resolution}x{self.vae.resolution} images; "
                                f"size {want} does not fit it")
            return self.vae.resolution, self.vae.resolution
        if want is not None:
            if want % 8:
                raise UserError(f"{self.vae.name} needs sizes in multiples of 8; {want} does not fit it")
            return want, want
        side = min(min(p.size) for p in pictures)
        side = max(64, min(1024, side - side % 8))
        return side, side

    @torch.no_grad()
    def render(self, f: ip.FramePlan):
        z = ip.interpolate(self.latents[f.a], self.latents[f.b], f.t, self.timeline.mode, axis=self.axis)
        return to_image(self.vae.decode(z))

    def record(self, f: ip.FramePlan, image: Any) -> dict[str, Any]:
        return {"model": {"name": self.vae.name, "path": self.vae.path, "kind": self.vae.kind},
                "width": self.size[0], "height": self.size[1]}


# ---------------------------------------------------------------------------------------------- diffusion


class DiffusionTravel:
    def __init__(self, engine: "TravelEngine", spec: TravelJob, timeline: ip.Timeline, emit: Emit,
                 cancelled: IsCancelled, stack: contextlib.ExitStack) -> None:
        from aigc_desktop.core.prompt_syntax import extract_networks
        from aigc_desktop.engines.diffusion import conditioning

        self.spec, self.timeline, self.cancelled = spec, timeline, cancelled
        self.diffusion = engine.diffusion()
        self.jobs = [self._job(k) for k in timeline.keyframes]
        self.model = self.diffusion.model(self.jobs[0], emit)
        # One set of LoRAs for every frame (they change the UNet): the job's list and the tags of the keyframe
        # prompts, which must then be the same tags in every keyframe.
        tags = []
        for job in self.jobs:
            (pos, pos_nets), (neg, neg_nets) = (extract_networks(job.params.prompt),
                                                extract_networks(job.params.negative_prompt))
            tags.append(sorted(n.tag for n in pos_nets + neg_nets))
        if any(t != tags[0] for t in tags):
            raise UserError("The keyframes use different LoRA tags: a travel applies one set of LoRAs to every "
                            "frame, so give every keyframe the same <lora:...> tags (or use the LoRA list)")
        self.embeds: list[dict[str, torch.Tensor]] = []
        # The first keyframe's conditioning stays open for the whole job: its LoRAs stay applied while the
        # frames render, exactly as a plain generation renders inside its own conditioning block.
        first = stack.enter_context(conditioning.prepared(self.model, self.jobs[0].params))
        for i, job in enumerate(self.jobs):
            if cancelled():
                raise CancelRequested()
            if i == 0:
                cond = first
                self._static(cond, i)
            else:  # encoded under the LoRAs already applied: tags stripped, no second application
                p = replace(job.params, prompt=extract_networks(job.params.prompt)[0],
                            negative_prompt=extract_networks(job.params.negative_prompt)[0], loras=())
                with conditioning.prepared(self.model, p) as cond:
                    self._static(cond, i)
                    self.embeds.append({k: v.detach().clone() for k, v in cond.pipeline_kwargs(1).items()})
                continue
            self.embeds.append({k: v.detach().clone() for k, v in cond.pipeline_kwargs(1).items()})
        self.cond_record = first.record()  # the LoRAs and embeddings every frame used
        self._pad_chunks(conditioning, extract_networks)
        p = spec.params
        scale = self.model.pipe.vae_scale_factor
        self.shape = (self.model.pipe.unet.config.in_channels, p.height // scale, p.width // scale)
        self._noise: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._keyframe_images: dict[int, Any] = {}

    @staticmethod
    def _static(cond: Any, i: int) -> None:
        """A travel moves between prompts itself; prompts that change during sampling are not interpolated."""
        if not getattr(cond, "is_static", True):
            raise UserError(f"Keyframe {i + 1}: prompt editing and alternation ([a:b:N], [a|b]) do not work in "
                            "travels; the travel itself moves from prompt to prompt")

    def _pad_chunks(self, conditioning: Any, extract_networks: Any) -> None:
        """Prompts of different lengths (chunks of 75 tokens) cannot be lerped token by token: the shorter
        ones are encoded again with empty chunks appended, as A1111 pads a prompt to its negative's length
        (two BREAKs in a row make one empty chunk). Their keyframe frames then differ slightly from a plain
        generation of the unpadded prompt; the longest prompts' frames stay exact."""
        chunk = 77
        counts = [e["prompt_embeds"].shape[1] // chunk for e in self.embeds]
        most = max(counts)
        for i, (job, count) in enumerate(zip(self.jobs, counts)):
            if count == most:
                continue
            text = extract_networks(job.params.prompt)[0] + " BREAK" * (most - count + 1)
            p = replace(job.params, prompt=text, negative_prompt=extract_networks(job.params.negative_prompt)[0],
                        loras=())
            with conditioning.prepared(self.model, p) as cond:
                self.embeds[i] = {k: v.detach().clone() for k, v in cond.pipeline_kwargs(1).items()}
        shapes = {tuple(e["prompt_embeds"].shape) for e in self.embeds}
        if len(shapes) > 1:
            lengths = sorted({s[1] // chunk for s in shapes})
            raise UserError(f"The keyframe prompts encode to different lengths ({' vs '.join(map(str, lengths))} "
                            "chunks of 75 tokens) even when padded: make them closer in length")

    def _job(self, k: ip.Keyframe) -> DiffusionJob:
        p = self.spec.params
        params = replace(p, prompt=k.prompt, negative_prompt=k.negative or p.negative_prompt, seed=int(k.seed),
                         batch_size=1, batch_count=1, mode="txt2img", init_image=None, mask=None,
                         variation_seed=None, variation_strength=0.0)
        return DiffusionJob(model=self.spec.model, params=params, device=self.spec.device, dtype=self.spec.dtype)

    def noise(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keyframe i's initial noise (the seed contract: noise.draw) and its generator's state after it."""
        if i not in self._noise:
            from aigc_desktop.engines.diffusion import noise as noise_lib

            gens = noise_lib.generators([int(self.timeline.keyframes[i].seed)])
            drawn = noise_lib.draw(gens, self.shape)
            self._noise[i] = (drawn, gens[0].get_state())
        return self._noise[i]

    @torch.no_grad()
    def render(self, f: ip.FramePlan):
        from aigc_desktop.engines.diffusion import memory, modes
        from aigc_desktop.engines.diffusion.schedulers import make_scheduler

        p, model, t = self.spec.params, self.model, f.t
        if f.keyframe is not None and f.keyframe in self._keyframe_images:  # rendered already (for a tie)
            return self._keyframe_images[f.keyframe]
        near = f.a if t < 0.5 else f.b
        tie = self.spec.strength > 0 and 0.0 < t < 1.0
        noise = ip.slerp(self.noise(f.a)[0], self.noise(f.b)[0], t, axis=None)
        embeds = {k: ip.lerp(self.embeds[f.a][k], self.embeds[f.b][k], t) for k in self.embeds[f.a]}
        if tie:
            from PIL import Image

            init = Image.blend(self.keyframe_image(f.a), self.keyframe_image(f.b), t)
        gen = torch.Generator("cpu")
        gen.set_state(self.noise(near)[1])  # as a plain generation: the generator continues after the noise
        seed = int(self.timeline.keyframes[near].seed)
        pipe = modes.build(model.pipe, model.family, "img2img" if tie else "txt2img",
                           make_scheduler(p.scheduler, model.scheduler_config, seeds=[seed]))
        job = memory.Workload(width=p.width, height=p.height, images=1, cfg=p.cfg_scale > 1.0,
                              element_size=torch.empty((), dtype=model.dtype).element_size())
        plan = memory.plan_for(pipe, model.device, self.diffusion.options.offload, job)
        memory.apply(pipe, plan, model.device)

        def on_step_end(pipe, i, timestep, kwargs):
            if self.cancelled():
                raise CancelRequested()  # before the next UNet call, no decode
            return kwargs

        kwargs: dict[str, Any] = dict(**embeds, num_inference_steps=p.steps, guidance_scale=p.cfg_scale,
                                      width=p.width, height=p.height, generator=[gen], output_type="pil",
                                      callback_on_step_end=on_step_end)
        if tie:
            modes.route_noise(pipe, lambda n: noise.to(n.device, n.dtype))
            kwargs.update(image=init, strength=self.spec.strength)
        else:
            device = pipe._execution_device if plan.offload else model.device
            kwargs["latents"] = noise.to(device, model.dtype)
        image = pipe(**kwargs).images[0]
        if f.keyframe is not None:
            self._keyframe_images[f.keyframe] = image
        return image

    def keyframe_image(self, i: int):
        if i not in self._keyframe_images:
            self.render(ip.FramePlan(-1, -1, i, i, 0.0))  # remembered by render()
        return self._keyframe_images[i]

    def record(self, f: ip.FramePlan, image: Any) -> dict[str, Any]:
        near = f.a if f.t < 0.5 else f.b
        rec = self.diffusion.record(self.jobs[near], self.model, int(self.timeline.keyframes[near].seed), 0)
        rec.update(self.cond_record)
        if f.keyframe is None:  # an in-between frame is not a plain generation of one prompt
            ka, kb = self.timeline.keyframes[f.a], self.timeline.keyframes[f.b]
            rec.update(prompt=f"{ka.prompt} → {kb.prompt}", seed=int(ka.seed), travel_strength=self.spec.strength)
        return rec


# ---------------------------------------------------------------------------------------------- StyleGAN


class StyleGANTravel:
    def __init__(self, engine: "TravelEngine", spec: TravelJob, timeline: ip.Timeline, emit: Emit) -> None:
        from aigc_desktop.engines.stylegan import sampling

        self.sampling = sampling
        self.sg = engine.stylegan()
        self.timeline = timeline
        seeds = tuple(int(k.seed) for k in timeline.keyframes)
        self.job = StyleGANJob(model=spec.model, seeds=seeds, device=spec.device, dtype=spec.dtype,
                               **dict(spec.stylegan))
        self.model = self.sg.model(self.job, emit)
        self.keys = [replace(self.sg._latent(self.job, k.seed),
                             truncation_psi=float(self.job.truncation_psi if k.truncation_psi is None
                                                  else k.truncation_psi)) for k in timeline.keyframes]
        space = "w" if timeline.mode == "lerp" else "z"
        self.latents = sampling.TravelLatents(self.model.G, self.keys, space, self.model.device)
        self.transform = self.sg._transform(self.job, self.model)
        self.force_fp32 = self.sg._force_fp32(self.job, self.model)

    @torch.no_grad()
    def render(self, f: ip.FramePlan):
        s = self.sampling
        ws = self.latents.ws(f.a, f.b, f.t)
        # One noise seed for the whole travel: random noise stays put instead of flickering.
        img = s.synthesize(self.model.G, ws, self.job.noise_mode, noise_seed=self.keys[0].seed,
                           transform=self.transform, force_fp32=self.force_fp32)
        return s.to_pil(img)[0]

    def record(self, f: ip.FramePlan, image: Any) -> dict[str, Any]:
        key = self.keys[f.a if f.t < 0.5 else f.b]
        job = replace(self.job, truncation_psi=key.truncation_psi)
        return self.sg.record(job, self.model, key.seed, image, self.force_fp32)


# ---------------------------------------------------------------------------------------------- engine


class TravelEngine:
    """Runs TravelJob. Shares model caches with the diffusion and StyleGAN engines it is given (the StyleGAN
    engine passes itself for walks), else keeps its own."""

    def __init__(self, options: EngineOptions | None = None, diffusion: Any = None, stylegan: Any = None) -> None:
        self.options = options or EngineOptions()
        self._diffusion, self._stylegan = diffusion, stylegan
        self._vae_cache: ModelCache | None = None
        devices.configure_threads(self.options.threads)

    def diffusion(self):
        if self._diffusion is None:
            from aigc_desktop.engines.diffusion.engine import DiffusionEngine

            self._diffusion = DiffusionEngine(self.options)
        return self._diffusion

    def stylegan(self):
        if self._stylegan is None:
            from aigc_desktop.engines.stylegan.engine import StyleGANEngine

            self._stylegan = StyleGANEngine(self.options)
        return self._stylegan

    def vae(self, spec: TravelJob, emit: Emit | None = None) -> LoadedVae:
        device = devices.resolve_device(spec.device if spec.device != "auto" else self.options.device)
        ref = spec.model
        key = (str(Path(ref.vae or ref.path).expanduser().resolve()), ref.family, str(device))
        if self._vae_cache is None:
            budget = int(self.options.memory_budget_gb * (1 << 30)) or default_budget_bytes(device)
            self._vae_cache = ModelCache(budget)
        hit = self._vae_cache.get(key)
        if hit is not None:
            return hit
        if emit:
            emit(Status(job_id=spec.id, text=f"Loading {ref.name}…"))
        return self._vae_cache.get_or_load(key, lambda: load_vae(ref, device))

    def renderer(self, spec: TravelJob, timeline: ip.Timeline, emit: Emit, cancelled: IsCancelled,
                 stack: contextlib.ExitStack):
        if spec.travel == "vae":
            return VaeMorph(self, spec, timeline, emit)
        if spec.travel == "diffusion":
            return DiffusionTravel(self, spec, timeline, emit, cancelled, stack)
        return StyleGANTravel(self, spec, timeline, emit)

    def run(self, spec: TravelJob, emit: Emit, cancelled: IsCancelled) -> JobResult:
        with contextlib.ExitStack() as stack:  # what a renderer opens (LoRAs applied) closes with the job
            return self._run(spec, emit, cancelled, stack)

    def _run(self, spec: TravelJob, emit: Emit, cancelled: IsCancelled, stack: contextlib.ExitStack) -> JobResult:
        timeline = ip.Timeline.from_state(spec.timeline)
        timeline.validate()
        if spec.travel == "vae":  # pictures the job carries are known by their pixels (as the timeline knows them)
            for k, image in zip(timeline.keyframes, spec.images):
                if image is not None and not k.digest:
                    k.digest = ip.image_digest(image)
        frames = ip.plan(timeline, spec.render_context)
        order = list(range(len(frames))) if spec.frames is None else list(spec.frames)
        bad = [i for i in order if not isinstance(i, int) or not 0 <= i < len(frames)]
        if bad:
            raise UserError(f"Frame {bad[0]} is not in this timeline (it has {len(frames)} frames)")
        todo = ip.unique_renders(frames, order)
        renderer = self.renderer(spec, timeline, emit, cancelled, stack)
        reporter = StepReporter(spec.id, len(todo), emit)
        images: dict[str, Any] = {}
        records: dict[str, dict[str, Any]] = {}
        for f in todo:
            if cancelled():
                raise CancelRequested()
            image = renderer.render(f)
            record = self.frame_record(spec, timeline, renderer, f, image)
            images[f.key], records[f.key] = image, record
            emit(TravelFrame(job_id=spec.id, index=f.index, key=f.key, image=image, record=record,
                             done=reporter.step + 1, total=reporter.total))
            emit(Preview(job_id=spec.id, step=reporter.step + 1, image=image))
            reporter.advance()
        if not spec.out:
            return JobResult(images=(), records=())
        from aigc_desktop.engines.export import export_frames

        emit(Status(job_id=spec.id, text=f"Writing {Path(spec.out).name}…"))
        out = export_frames([images[f.key] for f in frames], spec.out, timeline.fps,
                            records=[{**records[f.key], "frame": f.index} for f in frames],
                            cancelled=cancelled, loop=spec.loop_count, scale=spec.scale)
        first = frames[0]
        record = dict(records[first.key])
        record["travel"] = {**record.get("travel", {}), "output": str(out), "frames": len(frames),
                            "rendered": len(todo), "fps": timeline.fps, "timeline": timeline.to_state()}
        return JobResult(images=(images[first.key],), records=(record,))

    @staticmethod
    def frame_record(spec: TravelJob, timeline: ip.Timeline, renderer: Any, f: ip.FramePlan,
                     image: Any) -> dict[str, Any]:
        """The frame's parameters: at a keyframe, what regenerates it alone; always where it sits."""
        base = renderer.record(f, image)
        base.setdefault("app", "aigc-desktop")
        base.setdefault("app_version", __version__)
        base.setdefault("engine", "vae_morph" if spec.travel == "vae" else spec.travel)
        ka, kb = timeline.keyframes[f.a], timeline.keyframes[f.b]
        base["travel"] = {"kind": spec.travel, "frame": f.index, "segment": f.segment, "t": f.t,
                          "mode": timeline.mode, "from": ka.content(), "to": kb.content(), "key": f.key}
        return base

    def close(self) -> None:
        for engine in (self._diffusion, self._stylegan):
            close = getattr(engine, "close", None)
            if close:
                close()
        if self._vae_cache is not None:
            self._vae_cache.clear()


def walk_job(spec: StyleGANWalkJob) -> TravelJob:
    """The travel a StyleGAN walk spec describes (walks are StyleGAN travels with one segment setting)."""
    keys = [ip.Keyframe(seed=int(s), label=str(s)) for s in spec.seeds]
    timeline = ip.Timeline.uniform(keys, frames=spec.frames_per_transition, easing=spec.easing, loop=spec.loop,
                                   mode="lerp" if spec.space == "w" else "slerp", fps=spec.fps)
    fields = ("truncation_psi", "truncation_cutoff", "noise_mode", "class_idx", "mix_seed", "mix_layers",
              "translate", "rotate")
    return TravelJob(id=spec.id, travel="stylegan", model=spec.model, timeline=timeline.to_state(),
                     stylegan=tuple((name, getattr(spec, name)) for name in fields), out=spec.out,
                     device=spec.device, dtype=spec.dtype)


def run_walk(stylegan_engine: Any, spec: StyleGANWalkJob, emit: Emit, cancelled: IsCancelled) -> JobResult:
    """StyleGANWalkJob through the one travel path, on the StyleGAN engine's loaded models."""
    travel = TravelEngine(stylegan_engine.options, stylegan=stylegan_engine)
    result = travel.run(walk_job(spec), emit, cancelled)
    record = dict(result.records[0])
    info = record.get("travel", {})
    record["walk"] = {"keyframes": list(spec.seeds), "frames_per_transition": spec.frames_per_transition,
                      "frames": info.get("frames"), "space": spec.space, "loop": spec.loop, "easing": spec.easing,
                      "fps": spec.fps, "output": info.get("output")}
    return JobResult(images=result.images, records=(record,))
