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
