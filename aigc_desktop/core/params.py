"""Generation parameters, their validation, and the seed contract.

Seed contract (diffusion): image i of a batch uses seed + i; its initial noise is drawn in float32 from
`torch.Generator("cpu").manual_seed(seed + i)`, so the same parameters give the same image on every device.
The generator then goes on to the pipeline (VAE-encoding of an init image, ancestral / SDE noise), in the
order diffusers' own pipelines draw from it. A seed of -1 means "random" and is resolved to a concrete seed
when the job spec is built, so that every recorded image names the seed that made it.

Variation seed (A1111's "subseed"): when variation_seed is set and variation_strength > 0, every image keeps
the base seed and image i slerps its noise towards the noise of variation_seed + i, so a batch explores
variations of one image. Strength 0 is the plain seed's image; strength 1 is the variation seed's noise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields, replace
from typing import Any

from aigc_desktop.core.errors import InvalidParameter

MAX_SEED = 2**32 - 1

# Our scheduler names -> A1111 display names ("Sampler" / "Schedule type" in its metadata).
SCHEDULERS: dict[str, str] = {
    "euler": "Euler",
    "euler_a": "Euler a",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
    "dpmpp_sde_karras": "DPM++ SDE Karras",
    "ddim": "DDIM",
    "unipc": "UniPC",
    "lms": "LMS",
    "heun": "Heun",
    "lcm": "LCM",
}
DEFAULT_SCHEDULER = "euler_a"
LCM_MAX_STEPS = 50  # LCMScheduler picks its steps from a 50-step schedule (original_inference_steps)

MODES = ("txt2img", "img2img", "inpaint", "outpaint")
FAMILIES = ("sd1", "sd2", "sdxl")


def scheduler_from_display(name: str) -> str | None:
    """Our scheduler name for an A1111 sampler display name (case-insensitive), or None."""
    key = name.strip().lower()
    for ours, shown in SCHEDULERS.items():
        if key in (ours, shown.lower()):
            return ours
    return None


def random_seed() -> int:
    return random.SystemRandom().randint(0, MAX_SEED)


@dataclass(frozen=True)
class LoraRef:
    path: str
    weight: float = 1.0


@dataclass(frozen=True)
class GenerationParams:
    """Everything a diffusion generation needs besides the model. Immutable; build a new one to change."""

    prompt: str = ""
    negative_prompt: str = ""
    seed: int = -1
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    scheduler: str = DEFAULT_SCHEDULER
    batch_size: int = 1
    batch_count: int = 1
    # Modes beyond txt2img. Images are file paths (CLI) or PNG bytes (app canvas).
    mode: str = "txt2img"
    init_image: str | bytes | None = None
    strength: float = 0.75
    mask: str | bytes | None = None
    mask_blur: int = 4
    inpaint_only_masked: bool = False
    inpaint_padding: int = 32
    outpaint: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, top, right, bottom in pixels
    variation_seed: int | None = None
    variation_strength: float = 0.0
    loras: tuple[LoraRef, ...] = ()
    clip_skip: int = 1
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def with_seed_resolved(self) -> "GenerationParams":
        """A copy whose seed (and variation seed) are concrete."""
        p = self
        if p.seed is None or p.seed < 0:
            p = replace(p, seed=random_seed())
        if p.variation_seed is not None and p.variation_seed < 0:
            p = replace(p, variation_seed=random_seed())
        return p

    @property
    def image_count(self) -> int:
        return self.batch_size * self.batch_count

    @property
    def has_variation(self) -> bool:
        return self.variation_seed is not None and float(self.variation_strength) > 0.0

    def image_seeds(self) -> list[int]:
        """Seeds of every image this job makes: batch_count batches of batch_size, seed + i each
        (with a variation, all images keep the base seed, as A1111 does)."""
        step = 0 if self.has_variation else 1
        return [(self.seed + i * step) % (MAX_SEED + 1) for i in range(self.image_count)]

    def variation_seeds(self) -> list[int] | None:
        """Variation seed of every image (variation_seed + i), or None without a variation."""
        if not self.has_variation:
            return None
        return [(int(self.variation_seed) + i) % (MAX_SEED + 1) for i in range(self.image_count)]

    @property
    def denoising_steps(self) -> int:
        """UNet steps one image takes: with an init image and strength < 1, diffusers runs int(steps * strength)."""
        if self.mode == "txt2img" or float(self.strength) >= 1.0:
            return self.steps
        return int(self.steps * float(self.strength))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bytes):
                v = f"<{len(v)} bytes>"
            elif f.name == "loras":
                v = [{"path": l.path, "weight": l.weight} for l in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


def outpaint_size(width: int, height: int, margins: tuple[int, int, int, int]) -> tuple[int, int, int, int, int, int]:
    """Canvas of an outpainting: (new_width, new_height, left, top, right, bottom).

    The new size is rounded up to a multiple of 8; the extra pixels go to the right / bottom margin
    (to the left / top one when only that side grows)."""
    left, top, right, bottom = (int(v) for v in margins)

    def grow(size: int, first: int, second: int) -> tuple[int, int, int]:
        extra = -(size + first + second) % 8
        if second or not first:
            second += extra
        else:
            first += extra
        return size + first + second, first, second

    new_w, left, right = grow(int(width), left, right)
    new_h, top, bottom = grow(int(height), top, bottom)
    return new_w, new_h, left, top, right, bottom


def validate(p: GenerationParams) -> None:
    """Raise InvalidParameter with a one-line message for the first problem found."""
    if not isinstance(p.prompt, str) or not isinstance(p.negative_prompt, str):
        raise InvalidParameter("Prompt must be text")
    for name in ("width", "height"):
        v = getattr(p, name)
        if not isinstance(v, int) or isinstance(v, bool):
            raise InvalidParameter(f"{name.capitalize()} must be a whole number, got {v!r}")
        if v % 8:
            raise InvalidParameter(f"{name.capitalize()} must be a multiple of 8, got {v}")
        if not 64 <= v <= 8192:
            raise InvalidParameter(f"{name.capitalize()} must be between 64 and 8192, got {v}")
    if not isinstance(p.steps, int) or not 1 <= p.steps <= 1000:
        raise InvalidParameter(f"Steps must be between 1 and 1000, got {p.steps!r}")
    if not 0.0 <= float(p.cfg_scale) <= 100.0:
        raise InvalidParameter(f"CFG scale must be between 0 and 100, got {p.cfg_scale!r}")
    if p.scheduler not in SCHEDULERS:
        raise InvalidParameter(f"Unknown scheduler '{p.scheduler}'; choose one of: {', '.join(SCHEDULERS)}")
    if p.scheduler == "lcm" and p.steps > LCM_MAX_STEPS:
        raise InvalidParameter(f"LCM samples at most {LCM_MAX_STEPS} steps (4 to 8 are usual), got {p.steps}")
    if not isinstance(p.batch_size, int) or not 1 <= p.batch_size <= 64:
        raise InvalidParameter(f"Batch size must be between 1 and 64, got {p.batch_size!r}")
    if not isinstance(p.batch_count, int) or not 1 <= p.batch_count <= 1000:
        raise InvalidParameter(f"Batch count must be between 1 and 1000, got {p.batch_count!r}")
    if not isinstance(p.seed, int) or not -1 <= p.seed <= MAX_SEED:
        raise InvalidParameter(f"Seed must be -1 (random) or between 0 and {MAX_SEED}, got {p.seed!r}")
    if p.mode not in MODES:
        raise InvalidParameter(f"Unknown mode '{p.mode}'; choose one of: {', '.join(MODES)}")
    if not 0.0 <= float(p.strength) <= 1.0:
        raise InvalidParameter(f"Strength must be between 0 and 1, got {p.strength!r}")
    if p.mode in ("img2img", "inpaint", "outpaint") and p.init_image is None:
        raise InvalidParameter(f"Mode {p.mode} needs an init image")
    if p.mode == "txt2img" and p.init_image is not None:
        raise InvalidParameter("An init image was given for txt2img; use mode img2img, inpaint or outpaint")
    if p.mode == "inpaint" and p.mask is None:
        raise InvalidParameter("Inpainting needs a mask")
    if p.mask is not None and p.mode != "inpaint":
        raise InvalidParameter(f"A mask was given for mode {p.mode}; masks are for inpaint (outpaint makes its own)")
    if len(p.outpaint) != 4 or any((not isinstance(v, int)) or isinstance(v, bool) or v < 0 for v in p.outpaint):
        raise InvalidParameter(f"Outpaint margins must be four non-negative integers, got {p.outpaint!r}")
    if p.mode == "outpaint" and not any(p.outpaint):
        raise InvalidParameter("Outpainting needs at least one margin greater than 0")
    if p.mode != "outpaint" and any(p.outpaint):
        raise InvalidParameter(f"Outpaint margins were given for mode {p.mode}; use mode outpaint")
    if any(v > 4096 for v in p.outpaint):
        raise InvalidParameter(f"Outpaint margins must be at most 4096 pixels, got {p.outpaint!r}")
    if not isinstance(p.mask_blur, int) or isinstance(p.mask_blur, bool) or not 0 <= p.mask_blur <= 256:
        raise InvalidParameter(f"Mask blur must be a whole number between 0 and 256, got {p.mask_blur!r}")
    if not isinstance(p.inpaint_padding, int) or not 0 <= p.inpaint_padding <= 1024:
        raise InvalidParameter(f"Inpaint padding must be between 0 and 1024 pixels, got {p.inpaint_padding!r}")
    if p.mode != "txt2img" and p.denoising_steps < 1:
        raise InvalidParameter(f"Strength {p.strength} with {p.steps} steps leaves no denoising step; "
                               f"raise the strength or the steps")
    if p.variation_seed is not None and (not isinstance(p.variation_seed, int) or isinstance(p.variation_seed, bool)
                                         or not -1 <= p.variation_seed <= MAX_SEED):
        raise InvalidParameter(f"Variation seed must be -1 (random) or between 0 and {MAX_SEED}, "
                               f"got {p.variation_seed!r}")
    if not 0.0 <= float(p.variation_strength) <= 1.0:
        raise InvalidParameter(f"Variation strength must be between 0 and 1, got {p.variation_strength!r}")
    if float(p.variation_strength) > 0 and p.variation_seed is None:
        raise InvalidParameter("Variation strength needs a variation seed")
    if not 1 <= p.clip_skip <= 12:
        raise InvalidParameter(f"CLIP skip must be between 1 and 12, got {p.clip_skip!r}")
    for lora in p.loras:
        if not -10.0 <= float(lora.weight) <= 10.0:
            raise InvalidParameter(f"LoRA weight must be between -10 and 10, got {lora.weight!r}")
