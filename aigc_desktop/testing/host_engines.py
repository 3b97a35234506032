"""Engines that misbehave on purpose, for the engine-process tests (importable inside the engine process).

`MisbehavingEngine` runs FakeJobs like the fake engine, except by prompt:
    "exit"      os._exit(3) after the first step (a library that calls exit)
    "segfault"  a real segmentation fault after the first step
    "hang"      a step that never ends and ignores cancel (a stuck driver call)
"""

from __future__ import annotations

import os
import time

from aigc_desktop.core.jobs import Preview, StepReporter
from aigc_desktop.engines.base import FakeEngine, _gradient


class MisbehavingEngine(FakeEngine):
    def run(self, spec, emit, cancelled):
        if spec.prompt not in ("exit", "segfault", "hang"):
            return super().run(spec, emit, cancelled)
        StepReporter(spec.id, spec.steps, emit).advance()
        emit(Preview(job_id=spec.id, step=1, image=_gradient(spec.width, spec.height, 0.1, 0)))
        if spec.prompt == "exit":
            os._exit(3)
        if spec.prompt == "segfault":
            import ctypes

            ctypes.string_at(0)
        while True:  # "hang": never looks at cancelled()
            time.sleep(3600)


class StampedFakeEngine(FakeEngine):
    """The fake engine, with a Status "t=<time.monotonic_ns()>" sent right before each preview: the window's
    side measures how long a preview takes from the engine to its GUI thread (one clock for both processes
    on Linux and macOS: CLOCK_MONOTONIC is system-wide)."""

    def run(self, spec, emit, cancelled):
        from aigc_desktop.core.jobs import Status

        def stamped(event):
            if isinstance(event, Preview):
                emit(Status(job_id=event.job_id, text=f"t={time.monotonic_ns()}"))
            emit(event)

        return super().run(spec, stamped, cancelled)
