"""The engine contract and a fake engine for UI tests and demos.

    engine = SomeEngine(options)
    result = engine.run(spec, emit, cancelled)   # -> JobResult(images, records)

`emit` takes Status / Progress / Preview events; `cancelled()` is polled at least once per step and the
engine raises CancelRequested when it turns true. The Runner emits Started and the terminal event.
"""

from __future__ import annotations

import time
from typing import Any

from aigc_desktop import __version__
from aigc_desktop.core.errors import CancelRequested, UserError
from aigc_desktop.core.jobs import Emit, FakeJob, IsCancelled, JobResult, Preview, StepReporter
from aigc_desktop.core.runner import EngineOptions


class FakeEngine:
    """Draws a gradient that fills in step by step. Needs no torch, no model."""

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()

    def run(self, spec: Any, emit: Emit, cancelled: IsCancelled) -> JobResult:
        """Runs a FakeJob, or stands in for a real engine on any spec (its params give size and steps)."""
        if not isinstance(spec, FakeJob):
            p = spec.params
            spec = FakeJob(id=spec.id, steps=spec.total_steps, width=p.width, height=p.height,
                           step_seconds=0.005, prompt=p.prompt, seed=max(0, p.seed),
                           images=p.batch_size * p.batch_count)
        reporter = StepReporter(spec.id, spec.steps, emit)
        image = None
        for step in range(1, spec.steps + 1):
            if cancelled():
                raise CancelRequested()
            time.sleep(spec.step_seconds)
            if step == spec.fail_at_step or (spec.fail_message and spec.fail_at_step < 0 and step == 1):
                raise UserError(spec.fail_message or "Fake failure")
            image = _gradient(spec.width, spec.height, step / spec.steps, spec.seed)
            reporter.advance()
            emit(Preview(job_id=spec.id, step=step, image=image.copy()))
        images = [image] + [_gradient(spec.width, spec.height, 1.0, spec.seed + i) for i in range(1, spec.images)]
        records = [{"engine": "fake", "app_version": __version__, "prompt": spec.prompt, "seed": spec.seed + i,
                    "width": spec.width, "height": spec.height, "steps": spec.steps} for i in range(spec.images)]
        return JobResult(images=tuple(images), records=tuple(records))


def _gradient(width: int, height: int, t: float, seed: int):
    from PIL import Image

    r = int(255 * t)
    g = (seed * 53) % 256
    img = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (img.point(lambda v: v * t), Image.new("L", img.size, g), Image.new("L", img.size, r)))
