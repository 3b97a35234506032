"""Immutable job specs (built on the GUI thread or by the CLI) and the plain-data events a job emits.

A spec says everything an engine needs; an engine turns it into events. Events carry only plain data
(numbers, strings, PIL images, dicts) so they cross threads safely and UI code needs no torch.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from aigc_desktop.core.params import GenerationParams

_ids = itertools.count(1)


def new_job_id() -> str:
    return f"job-{next(_ids)}-{int(time.time() * 1000) % 100000:05d}"


@dataclass(frozen=True)
class ModelRef:
    """A model the user picked: a file or folder, its detected kind and (optionally) forced family."""

    path: str
    kind: str = "diffusers"  # catalog kind: diffusers | checkpoint | stylegan | vae | lora | ...
    family: str | None = None  # sd1 | sd2 | sdxl; None = detect
    vae: str | None = None  # standalone VAE file that replaces the model's own
    prediction_type: str | None = None  # "epsilon" | "v_prediction"; None = the family default

    @property
    def name(self) -> str:
        from pathlib import Path

        return Path(self.path).stem if Path(self.path).suffix else Path(self.path).name


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """Base of every job spec. `kind` selects the engine; `device`/`dtype` may be "auto"."""

    kind: ClassVar[str] = ""
    id: str = field(default_factory=new_job_id)
    device: str = "auto"
    dtype: str = "auto"
    # Where the result goes, for the canvas: {"frame": [x, y, w, h], "layer_id": str | None, "batch": n}.
    # Plain JSON-able data; engines ignore it; previews and results carry the job id, so the window finds
    # the target from the spec with no side tables. None: results only go to the history.
    target: dict | None = field(default=None, compare=False, hash=False)

    @property
    def title(self) -> str:
        return self.kind

    def validate(self) -> None:
        """Raise InvalidParameter for a spec that cannot run."""

    @property
    def total_steps(self) -> int:
        return 1


@dataclass(frozen=True, kw_only=True)
class DiffusionJob(JobSpec):
    kind: ClassVar[str] = "diffusion"
    model: ModelRef
    params: GenerationParams

    @property
    def title(self) -> str:
        prompt = self.params.prompt.strip().replace("\n", " ")
        return f"{self.params.mode}: {prompt[:40] or '(no prompt)'}"

    def validate(self) -> None:
        from aigc_desktop.core.params import validate

        validate(self.params)

    @property
    def total_steps(self) -> int:
        p = self.params
        steps = p.steps
        if p.mode != "txt2img" and p.strength < 1.0:
            steps = max(1, min(p.steps, int(p.steps * p.strength)))
        return steps * p.batch_count


@dataclass(frozen=True, kw_only=True)
class FakeJob(JobSpec):
    """A job for the fake engine: UI tests and demos without any model."""

    kind: ClassVar[str] = "fake"
    steps: int = 5
    width: int = 64
    height: int = 64
    step_seconds: float = 0.01
    fail_message: str | None = None
    fail_at_step: int = -1
    prompt: str = "fake"
    seed: int = 0
    images: int = 1

    @property
    def title(self) -> str:
        return f"fake: {self.prompt}"

    @property
    def total_steps(self) -> int:
        return self.steps


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, kw_only=True)
class JobEvent:
    job_id: str


@dataclass(frozen=True, kw_only=True)
class Queued(JobEvent):
    title: str = ""


@dataclass(frozen=True, kw_only=True)
class Started(JobEvent):
    total: int = 0


@dataclass(frozen=True, kw_only=True)
class Status(JobEvent):
    """A phase the user should see ("Loading model…")."""

    text: str


@dataclass(frozen=True, kw_only=True)
class Progress(JobEvent):
    step: int
    total: int
    elapsed: float
    eta: float | None


@dataclass(frozen=True, kw_only=True)
class Preview(JobEvent):
    step: int
    image: Any  # PIL.Image.Image, small and cheap
    index: int = 0  # which image of the batch


@dataclass(frozen=True, kw_only=True)
class Finished(JobEvent):
    images: tuple[Any, ...]  # PIL images
    records: tuple[dict[str, Any], ...]  # one full-parameter record per image (see core.metadata)
    elapsed: float = 0.0
    paths: tuple[str, ...] = ()  # where the worker saved them (empty when saving is off)


@dataclass(frozen=True, kw_only=True)
class Cancelled(JobEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class Failed(JobEvent):
    message: str  # one line for the user
    details: str = ""  # traceback for the log


@dataclass(frozen=True, kw_only=True)
class SaveFailed(Failed):
    """The images were made but could not be saved: never "done". They ride along (still in memory) so the
    window can keep them on the canvas or in staging and the user can save them elsewhere."""

    images: tuple[Any, ...] = ()
    records: tuple[dict[str, Any], ...] = ()
    paths: tuple[str, ...] = ()  # the ones that were saved before the error
    elapsed: float = 0.0


Emit = Callable[[JobEvent], None]
IsCancelled = Callable[[], bool]


@dataclass(frozen=True)
class JobResult:
    """What an engine returns: the images and one full-parameter record per image."""

    images: tuple[Any, ...]
    records: tuple[dict[str, Any], ...]


class StepReporter:
    """Turns "step k of n done" into Progress events with elapsed time and an ETA."""

    def __init__(self, job_id: str, total: int, emit: Emit, start: float | None = None) -> None:
        self.job_id = job_id
        self.total = max(1, int(total))
        self.emit = emit
        self.start = time.perf_counter() if start is None else start
        self.step = 0

    def advance(self, n: int = 1) -> Progress:
        self.step = min(self.total, self.step + n)
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.step * (self.total - self.step) if self.step else None
        event = Progress(job_id=self.job_id, step=self.step, total=self.total, elapsed=elapsed, eta=eta)
        self.emit(event)
        return event


# ---------------------------------------------------------------------------------------------- StyleGAN

STYLEGAN_NOISE_MODES = ("const", "random", "none")
STYLEGAN_MIX_PRESETS = ("coarse", "middle", "fine", "all")


@dataclass(frozen=True, kw_only=True)
class StyleGANJob(JobSpec):
    """StyleGAN images, one per seed (z exactly as NVIDIA's generate.py draws it). A seed grid is a job
    with many seeds. `live` renders for the live view: images go out as Preview events only (nothing is
    saved or added to history; the result is empty)."""

    kind: ClassVar[str] = "stylegan"
    model: ModelRef
    seeds: tuple[int, ...] = (0,)
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None  # apply psi to the first N layers only; None = all
    noise_mode: str = "const"  # const | random (drawn from the seed: reproducible) | none
    class_idx: int | None = None  # conditional models; None = the class the seed draws (as the visualizer)
    mix_seed: int | None = None  # style mixing: layers `mix_layers` come from this seed
    mix_layers: str | None = None  # coarse | middle | fine | all | A-B (w indices, inclusive)
    translate: tuple[float, float] = (0.0, 0.0)  # StyleGAN3 input transform (as gen_images.py)
    rotate: float = 0.0  # degrees, StyleGAN3
    live: bool = False

    @property
    def title(self) -> str:
        seeds = self.seeds if len(self.seeds) <= 3 else (*self.seeds[:2], "…")
        mix = f", mix {self.mix_seed}:{self.mix_layers}" if self.mix_seed is not None and self.mix_layers else ""
        return f"stylegan: seed {', '.join(map(str, seeds))} ψ {self.truncation_psi:g}{mix}"

    @property
    def total_steps(self) -> int:
        return max(1, len(self.seeds))

    @property
    def image_count(self) -> int:
        return 0 if self.live else len(self.seeds)

    def validate(self) -> None:
        import math
        import re

        from aigc_desktop.core.errors import InvalidParameter
        from aigc_desktop.core.params import MAX_SEED

        if not self.seeds:
            raise InvalidParameter("Give at least one seed")
        for s in list(self.seeds) + ([self.mix_seed] if self.mix_seed is not None else []):
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
                raise InvalidParameter(f"Seeds must be whole numbers from 0 to {MAX_SEED}, got {s!r}")
        if not isinstance(self.truncation_psi, (int, float)) or not math.isfinite(self.truncation_psi) \
                or abs(self.truncation_psi) > 10:
            raise InvalidParameter(f"Truncation psi must be a number between -10 and 10, got {self.truncation_psi!r}")
        if self.truncation_cutoff is not None and (not isinstance(self.truncation_cutoff, int)
                                                   or self.truncation_cutoff < 0):
            raise InvalidParameter("Truncation cutoff must be a whole number >= 0")
        if self.noise_mode not in STYLEGAN_NOISE_MODES:
            raise InvalidParameter(f"Noise mode must be one of {', '.join(STYLEGAN_NOISE_MODES)}, "
                                   f"got '{self.noise_mode}'")
        if self.class_idx is not None and (not isinstance(self.class_idx, int) or self.class_idx < 0):
            raise InvalidParameter("Class must be a whole number >= 0")
        if self.mix_layers is not None and str(self.mix_layers).strip().lower() not in STYLEGAN_MIX_PRESETS \
                and not re.fullmatch(r"\d+(-\d+)?", str(self.mix_layers).strip()):
            raise InvalidParameter(f"Mixing layers must be coarse, middle, fine, all or A-B, got '{self.mix_layers}'")
        if self.mix_layers and self.mix_seed is None:
            raise InvalidParameter("Style mixing needs a mixing seed")
        values = [*self.translate, self.rotate]
        if len(self.translate) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise InvalidParameter("Translate must be two numbers and rotate one number")

    @classmethod
    def from_record(cls, record: dict[str, Any], model_path: str | None = None) -> "StyleGANJob":
        """The job that regenerates an image from its metadata record (see the StyleGAN engine)."""
        from aigc_desktop.core.errors import InvalidParameter

        if record.get("engine") != "stylegan":
            raise InvalidParameter("This image was not made by the StyleGAN engine")
        model = record.get("model") or {}
        path = model_path or model.get("path")
        if not path:
            raise InvalidParameter("The record does not say which model made the image")
        return cls(model=ModelRef(str(path), kind="stylegan"), seeds=(int(record["seed"]),),
                   truncation_psi=float(record.get("truncation_psi", 1.0)),
                   truncation_cutoff=record.get("truncation_cutoff"), noise_mode=record.get("noise_mode", "const"),
                   class_idx=record.get("class_idx"), mix_seed=record.get("mix_seed"),
                   mix_layers=record.get("mix_layers"), translate=tuple(record.get("translate") or (0.0, 0.0)),
                   rotate=float(record.get("rotate", 0.0)))


@dataclass(frozen=True, kw_only=True)
class StyleGANWalkJob(StyleGANJob):
    """A latent walk through keyframe `seeds` (lerp in W or slerp in Z), written to `out` as GIF, WebP,
    MP4 or a folder of PNG frames. The result is the first frame, its record naming the file."""

    frames_per_transition: int = 30
    space: str = "w"  # w (lerp after mapping) | z (slerp before mapping)
    loop: bool = False  # return to the first keyframe
    easing: str = "linear"  # a core.interpolate easing (linear, ease-in, ease-out, ease-in-out, cubic)
    fps: float = 30.0
    out: str = ""

    @property
    def title(self) -> str:
        return f"stylegan walk: {' → '.join(map(str, self.seeds[:6]))} → {self.out}"

    @property
    def total_steps(self) -> int:
        n = len(self.seeds)
        if n < 2:
            return 1
        return self.frames_per_transition * (n if self.loop else n - 1) + (0 if self.loop else 1)

    @property
    def image_count(self) -> int:
        return 1

    def validate(self) -> None:
        import math

        from aigc_desktop.core.errors import InvalidParameter

        super().validate()
        if len(self.seeds) < 2:
            raise InvalidParameter("A walk needs at least two keyframe seeds")
        if not isinstance(self.frames_per_transition, int) or not 1 <= self.frames_per_transition <= 10000:
            raise InvalidParameter("Frames per transition must be a whole number from 1 to 10000")
        if self.space not in ("w", "z"):
            raise InvalidParameter(f"Interpolation space must be w or z, got '{self.space}'")
        from aigc_desktop.core.interpolate import easing_name

        easing_name(self.easing)  # the one easing list (core.interpolate); raises InvalidParameter
        if not isinstance(self.fps, (int, float)) or not math.isfinite(self.fps) or not 0 < self.fps <= 240:
            raise InvalidParameter("Frames per second must be between 0 and 240")
        if not self.out:
            raise InvalidParameter("Say where to write the walk (a .gif, .webp, .mp4 file or a folder)")
        from aigc_desktop.core.interpolate import animation_format

        animation_format(self.out)  # the one rule for export targets


# ---------------------------------------------------------------------------------------------- training

TRAIN_MODELS = ("diffusion", "stylegan", "vae")


@dataclass(frozen=True, kw_only=True)
class TrainJob(JobSpec):
    """Train a model on a folder of images (+ .txt captions); the run folder `out` keeps checkpoints,
    samples, the loss log and the exported model (out/model). `options` are trainer options as
    (name, value) pairs (see `aigc-desktop train KIND --list-options`)."""

    kind: ClassVar[str] = "train"
    model: str  # diffusion | stylegan | vae
    data: str
    out: str
    steps: int = 1000
    resolution: int = 64
    batch: int = 16
    resume: bool = False
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def title(self) -> str:
        from pathlib import Path

        return f"train {self.model}: {Path(self.data).name or self.data}"

    @property
    def total_steps(self) -> int:
        return max(1, int(self.steps))

    def validate(self) -> None:
        from pathlib import Path

        from aigc_desktop.core.errors import InvalidParameter

        if self.model not in TRAIN_MODELS:
            raise InvalidParameter(f"Unknown model kind '{self.model}'; choose {', '.join(TRAIN_MODELS)}")
        if not self.data or not Path(self.data).is_dir():
            raise InvalidParameter(f"Data folder not found: {self.data or '(none)'}")
        if not self.out:
            raise InvalidParameter("Choose an output folder for the training run")
        for name, value, low in (("Steps", self.steps, 1), ("Batch size", self.batch, 1),
                                 ("Resolution", self.resolution, 8)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidParameter(f"{name} must be a whole number >= {low}, got {value!r}")
        if self.resolution & (self.resolution - 1):
            raise InvalidParameter(f"Resolution must be a power of two, got {self.resolution}")


@dataclass(frozen=True, kw_only=True)
class TrainMetrics(JobEvent):
    """A training job's losses, averaged since the previous report (the Train panel plots them)."""

    step: int
    total: int
    losses: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class TrainSample(JobEvent):
    """A training job's sample grid at a step (shown in the Train panel, not as a canvas preview)."""

    step: int
    image: Any  # PIL.Image.Image


@dataclass(frozen=True, kw_only=True)
class StyleGANConvertJob(JobSpec):
    """Convert a StyleGAN checkpoint (NVIDIA pickle, rosinality .pt) to our safetensors + JSON folder `out`."""

    kind: ClassVar[str] = "stylegan"
    model: ModelRef
    out: str

    @property
    def title(self) -> str:
        return f"convert {self.model.name} → {self.out}"

    @property
    def image_count(self) -> int:
        return 0

    def validate(self) -> None:
        from aigc_desktop.core.errors import InvalidParameter

        if not self.out:
            raise InvalidParameter("Say which folder the converted model goes to")


# ---------------------------------------------------------------------------------------------- travel

TRAVELS = ("vae", "diffusion", "stylegan")


@dataclass(frozen=True, kw_only=True)
class TravelJob(JobSpec):
    """Latent interpolation through a timeline's keyframes (core.interpolate.Timeline state): a VAE morph
    between images, a diffusion travel between (prompt, seed) keyframes, or a StyleGAN travel between seeds.

    `frames` lists the frame indices to render, in that order (the UI sends coarse-first orders and leaves
    out frames it has cached); None renders every frame in playing order. Each rendered frame goes out as a
    TravelFrame event. With `out` set, the whole animation is written there (GIF / WebP / MP4 / WebM / a PNG
    folder) and the result is its first frame, whose record names the file."""

    kind: ClassVar[str] = "travel"
    travel: str  # vae | diffusion | stylegan
    model: ModelRef
    timeline: dict[str, Any]
    images: tuple[Any, ...] = ()  # VAE morph: PIL images per keyframe (None: read the keyframe's file)
    params: GenerationParams | None = None  # diffusion: steps, CFG, scheduler, size, negative prompt, LoRAs
    strength: float = 0.0  # diffusion: > 0 ties in-between frames to the keyframes' images (img2img)
    size: int | None = None  # VAE morph: the side images are resized and cropped to (None: the VAE's)
    # StyleGAN: StyleGANJob fields as (name, value) pairs (truncation_psi, noise_mode, class_idx, mix_seed,
    # mix_layers, truncation_cutoff, translate, rotate); a keyframe's own truncation_psi wins.
    stylegan: tuple[tuple[str, Any], ...] = ()
    frames: tuple[int, ...] | None = None
    out: str = ""
    loop_count: int = 0  # export: 0 = forever
    scale: float = 1.0  # export: frame size factor

    @property
    def title(self) -> str:
        keys = (self.timeline or {}).get("keyframes") or []
        return f"{self.travel} travel: {len(keys)} keyframes" + (f" → {self.out}" if self.out else "")

    @property
    def total_steps(self) -> int:
        if self.frames is not None:
            return max(1, len(self.frames))
        from aigc_desktop.core.interpolate import Timeline, plan

        try:
            return max(1, len({f.key for f in plan(Timeline.from_state(self.timeline))}))
        except Exception:  # noqa: BLE001 - an invalid timeline fails in validate(); the count is only a hint
            return 1

    @property
    def image_count(self) -> int:
        return 1 if self.out else 0

    @property
    def render_context(self) -> dict[str, Any]:
        """What decides every frame besides the keyframes (part of each frame's cache key)."""
        from dataclasses import asdict

        params = None
        if self.params is not None:
            params = {k: v for k, v in asdict(self.params).items() if k not in ("prompt", "negative_prompt", "seed")}
        return {"travel": self.travel, "model": asdict(self.model), "params": params, "strength": self.strength,
                "size": self.size, "stylegan": [list(p) for p in self.stylegan], "device": self.device,
                "dtype": self.dtype}

    def validate(self) -> None:
        import math

        from aigc_desktop.core.errors import InvalidParameter
        from aigc_desktop.core.interpolate import Timeline

        if self.travel not in TRAVELS:
            raise InvalidParameter(f"Unknown travel '{self.travel}': choose {', '.join(TRAVELS)}")
        timeline = Timeline.from_state(self.timeline)
        timeline.validate()
        if self.travel == "diffusion":
            if self.params is None:
                raise InvalidParameter("A diffusion travel needs generation parameters")
            from aigc_desktop.core.params import validate

            validate(self.params)
        if not isinstance(self.strength, (int, float)) or not 0.0 <= self.strength < 1.0:
            raise InvalidParameter("Travel strength must be from 0 up to (not including) 1")
        if self.size is not None and (not isinstance(self.size, int) or not 8 <= self.size <= 4096):
            raise InvalidParameter("Size must be a whole number from 8 to 4096")
        if not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale) or not 0 < self.scale <= 16:
            raise InvalidParameter("Scale must be a number above 0, at most 16")
        if not isinstance(self.loop_count, int) or self.loop_count < 0:
            raise InvalidParameter("Loop count must be a whole number >= 0 (0 = forever)")
        if self.out:
            from aigc_desktop.core.interpolate import animation_format

            animation_format(self.out)
            if self.frames is not None:
                raise InvalidParameter("An exported travel renders every frame (leave `frames` unset)")
        if self.travel == "stylegan":
            StyleGANJob(model=self.model, seeds=tuple(int(k.seed) for k in timeline.keyframes),
                        **dict(self.stylegan)).validate()


@dataclass(frozen=True, kw_only=True)
class TravelFrame(JobEvent):
    """One rendered frame of a travel: its index in the plan, its cache key, the image and its parameters."""

    index: int
    key: str
    image: Any  # PIL.Image.Image
    record: dict[str, Any] = field(default_factory=dict)
    done: int = 0
    total: int = 0


@dataclass(frozen=True, kw_only=True)
class ExportJob(JobSpec):
    """Write frames (PIL images, in order) as an animation or PNG folder; `records` (per frame, optional)
    go into the PNG frames' metadata."""

    kind: ClassVar[str] = "export"
    frames: tuple[Any, ...]
    out: str
    fps: float = 12.0
    records: tuple[dict[str, Any], ...] = ()
    loop_count: int = 0
    pingpong: bool = False
    scale: float = 1.0

    @property
    def title(self) -> str:
        return f"export {len(self.frames)} frames → {self.out}"

    @property
    def total_steps(self) -> int:
        return max(1, len(self.frames))

    @property
    def image_count(self) -> int:
        return 0

    def validate(self) -> None:
        from aigc_desktop.core.errors import InvalidParameter
        from aigc_desktop.core.interpolate import animation_format

        if not self.frames:
            raise InvalidParameter("No frames to export")
        if not self.out:
            raise InvalidParameter("Say where to export the frames")
        animation_format(self.out)
