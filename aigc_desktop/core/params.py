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
        """A copy whose seed (and variation seed) are concrete. The parameters are validated first, so a
        seed below -1 is refused rather than turned into a random one."""
        validate(self)
        p = self
        if p.seed == -1:
            p = replace(p, seed=random_seed())
        if p.variation_seed == -1:
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


MAX_PROMPT_CHARS = 100_000  # A1111 has no limit; this only stops pasted megabytes from reaching the parser


def shown(value: Any, limit: int = 24) -> str:
    """A value as an error message echoes it: a 5000-digit seed or a pasted essay is cut, not repeated."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** (limit - 2):
        # str() of an int of over 4300 digits raises in Python 3.11, so the longest are only described.
        return f"a {len(str(abs(value)))}-digit number" if abs(value) < 10 ** 4000 else "a number of over 4000 digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _whole(name: str, v: Any, lo: int, hi: int, extra: str = "") -> None:
    if not _is_int(v) or not lo <= v <= hi:
        raise InvalidParameter(f"{name} must be {extra}between {lo} and {hi}, got {shown(v)}")


def _real(name: str, v: Any, lo: float, hi: float) -> None:
    # NaN fails every comparison, so it is refused here with infinities and text.
    if not _is_number(v) or not lo <= float(v) <= hi:
        raise InvalidParameter(f"{name} must be between {lo:g} and {hi:g}, got {shown(v)}")


def validate(p: GenerationParams) -> None:
    """Raise InvalidParameter with a one-line message naming the parameter and its range, for the first
    problem found. Every way in (CLI flags, the window, a restored record, a project) passes here before
    seeds are resolved."""
    if not isinstance(p.prompt, str) or not isinstance(p.negative_prompt, str):
        raise InvalidParameter("Prompt must be text")
    for label, text in (("Prompt", p.prompt), ("Negative prompt", p.negative_prompt)):
        if len(text) > MAX_PROMPT_CHARS:
            raise InvalidParameter(f"{label} must be at most {MAX_PROMPT_CHARS} characters, got {len(text)}")
    for name in ("width", "height"):
        v = getattr(p, name)
        if not _is_int(v):
            raise InvalidParameter(f"{name.capitalize()} must be a whole number between 64 and 8192, got {shown(v)}")
        if not 64 <= v <= 8192:
            raise InvalidParameter(f"{name.capitalize()} must be between 64 and 8192, got {shown(v)}")
        if v % 8:
            raise InvalidParameter(f"{name.capitalize()} must be a multiple of 8, got {v}")
    _whole("Steps", p.steps, 1, 1000)
    _real("CFG scale", p.cfg_scale, 0.0, 100.0)
    if not isinstance(p.scheduler, str) or p.scheduler not in SCHEDULERS:
        raise InvalidParameter(f"Unknown scheduler {shown(p.scheduler, 40)}; choose one of: {', '.join(SCHEDULERS)}")
    if p.scheduler == "lcm" and p.steps > LCM_MAX_STEPS:
        raise InvalidParameter(f"LCM samples at most {LCM_MAX_STEPS} steps (4 to 8 are usual), got {p.steps}")
    _whole("Batch size", p.batch_size, 1, 64)
    _whole("Batch count", p.batch_count, 1, 1000)
    if not _is_int(p.seed) or not -1 <= p.seed <= MAX_SEED:
        raise InvalidParameter(f"Seed must be -1 (random) or between 0 and {MAX_SEED}, got {shown(p.seed)}")
    if not isinstance(p.mode, str) or p.mode not in MODES:
        raise InvalidParameter(f"Unknown mode {shown(p.mode, 40)}; choose one of: {', '.join(MODES)}")
    _real("Strength", p.strength, 0.0, 1.0)
    for label, image in (("Init image", p.init_image), ("Mask", p.mask)):
        if image is not None and not isinstance(image, (str, bytes)):
            raise InvalidParameter(f"{label} must be a file path or image bytes, got {type(image).__name__}")
    if p.mode in ("img2img", "inpaint", "outpaint") and p.init_image is None:
        raise InvalidParameter(f"Mode {p.mode} needs an init image")
    if p.mode == "txt2img" and p.init_image is not None:
        raise InvalidParameter("An init image was given for txt2img; use mode img2img, inpaint or outpaint")
    if p.mode == "inpaint" and p.mask is None:
        raise InvalidParameter("Inpainting needs a mask")
    if p.mask is not None and p.mode != "inpaint":
        raise InvalidParameter(f"A mask was given for mode {p.mode}; masks are for inpaint (outpaint makes its own)")
    if (not isinstance(p.outpaint, (tuple, list)) or len(p.outpaint) != 4
            or any(not _is_int(v) or v < 0 for v in p.outpaint)):
        raise InvalidParameter(f"Outpaint margins must be four whole numbers between 0 and 4096, "
                               f"got {shown(p.outpaint, 60)}")
    if p.mode == "outpaint" and not any(p.outpaint):
        raise InvalidParameter("Outpainting needs at least one margin greater than 0")
    if p.mode != "outpaint" and any(p.outpaint):
        raise InvalidParameter(f"Outpaint margins were given for mode {p.mode}; use mode outpaint")
    if any(v > 4096 for v in p.outpaint):
        raise InvalidParameter(f"Outpaint margins must be at most 4096 pixels, got {shown(tuple(p.outpaint), 60)}")
    _whole("Mask blur", p.mask_blur, 0, 256, "a whole number ")
    if not isinstance(p.inpaint_only_masked, bool):
        raise InvalidParameter(f"Only masked must be true or false, got {shown(p.inpaint_only_masked)}")
    _whole("Inpaint padding", p.inpaint_padding, 0, 1024)
    if p.mode != "txt2img" and p.denoising_steps < 1:
        raise InvalidParameter(f"Strength {p.strength} with {p.steps} steps leaves no denoising step; "
                               f"raise the strength or the steps")
    if p.variation_seed is not None and (not _is_int(p.variation_seed) or not -1 <= p.variation_seed <= MAX_SEED):
        raise InvalidParameter(f"Variation seed must be -1 (random) or between 0 and {MAX_SEED}, "
                               f"got {shown(p.variation_seed)}")
    _real("Variation strength", p.variation_strength, 0.0, 1.0)
    if float(p.variation_strength) > 0 and p.variation_seed is None:
        raise InvalidParameter("Variation strength needs a variation seed")
    _whole("CLIP skip", p.clip_skip, 1, 12)
    if not isinstance(p.loras, tuple) or len(p.loras) > 64:
        raise InvalidParameter("LoRAs must be a list of at most 64 entries")
    for lora in p.loras:
        if not isinstance(lora, LoraRef) or not isinstance(lora.path, str):
            raise InvalidParameter(f"Each LoRA needs a file and a weight, got {shown(lora, 60)}")
        _real("LoRA weight", lora.weight, -10.0, 10.0)


# ------------------------------------------------------------------------------------ records from disk

# GenerationParams field -> record key (engine records and GenerationParams.to_dict use the same names).
_RECORD_FIELDS = ("prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height", "scheduler",
                  "batch_size", "batch_count", "mode", "strength", "mask_blur", "inpaint_only_masked",
                  "inpaint_padding", "outpaint", "variation_seed", "variation_strength", "clip_skip")


def params_from_record(record: Any, base: GenerationParams | None = None, source: str = "record") -> GenerationParams:
    """GenerationParams from a record or a project loaded from disk (an image's JSON record, a project's
    saved job, GenerationParams.to_dict()), checked field by field and then by validate(); a wrong type or
    value is one InvalidParameter line naming `source` and the field. Fields the record lacks keep `base`'s
    values; a record's seed is its image's own seed (`seed`), not the batch's base seed. Input images (paths
    or bytes in a record) are not taken: the caller supplies them."""
    if not isinstance(record, dict):
        raise InvalidParameter(f"{source} is not a JSON object (found {type(record).__name__})")
    p = base or GenerationParams()
    values: dict[str, Any] = {}
    for name in _RECORD_FIELDS:
        if name not in record or record[name] is None and name != "variation_seed":
            continue
        value = record[name]
        default = getattr(GenerationParams(), name)
        if name == "outpaint":
            if not isinstance(value, (list, tuple)):
                raise InvalidParameter(f"{source}: outpaint must be a list of four whole numbers, got {shown(value)}")
            value = tuple(value)
        elif isinstance(default, float) and _is_int(value):
            value = float(value)
        elif name == "variation_seed":
            pass
        elif type(value) is not type(default) and not (isinstance(default, float) and _is_number(value)):
            raise InvalidParameter(f"{source}: {name} must be {type(default).__name__}, got "
                                   f"{type(value).__name__} {shown(value)}")
        values[name] = value
    if "loras" in record:
        loras = record["loras"]
        if not isinstance(loras, list):
            raise InvalidParameter(f"{source}: loras must be a list, got {type(loras).__name__}")
        refs = []
        for entry in loras[:65]:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or \
                    not _is_number(entry.get("weight", 1.0)):
                raise InvalidParameter(f"{source}: each LoRA needs a path (text) and a weight (number), "
                                       f"got {shown(entry, 60)}")
            refs.append(LoraRef(entry["path"], float(entry.get("weight", 1.0))))
        values["loras"] = tuple(refs)
    params = replace(p, **values)
    try:
        validate(params)
    except InvalidParameter as exc:
        raise InvalidParameter(f"{source}: {exc}") from None
    return params


def validate_record(record: Any, source: str = "record") -> None:
    """Check a record or project entry from disk (see params_from_record); InvalidParameter if it is bad."""
    params_from_record(record, source=source)
