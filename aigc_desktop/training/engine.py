"""The training engine: runs a TrainJob in the app's worker thread and reports progress, losses and
sample grids as plain events (Progress, Status, TrainMetrics, TrainSample)."""

from __future__ import annotations

import time
from typing import Any

from aigc_desktop.core.jobs import (Emit, IsCancelled, JobResult, Progress, Status, TrainJob, TrainMetrics,
                                    TrainSample)
from aigc_desktop.core.runner import EngineOptions


class TrainEngine:
    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()

    def config_for(self, spec: TrainJob):
        from aigc_desktop.training.registry import make_config

        device = spec.device if spec.device != "auto" else self.options.device
        return make_config(spec.model, data=spec.data, out=spec.out, steps=spec.steps, resolution=spec.resolution,
                           batch=spec.batch, resume=spec.resume, device=device or "auto",
                           threads=self.options.threads, **dict(spec.options))

    def run(self, spec: TrainJob, emit: Emit, cancelled: IsCancelled) -> JobResult:
        from aigc_desktop.training.common import Hooks
        from aigc_desktop.training.registry import trainer_class

        config = self.config_for(spec)
        start = time.perf_counter()
        first: dict[str, int] = {}

        def on_step(step: int, total: int, losses: dict[str, float]) -> None:
            # ETA from this session's pace (a resumed run starts at its checkpoint's step).
            first.setdefault("step", step - config.log_every)
            elapsed = time.perf_counter() - start
            done = max(1, step - first["step"])
            eta = elapsed / done * (total - step)
            emit(Progress(job_id=spec.id, step=step, total=total, elapsed=elapsed, eta=eta))
            emit(TrainMetrics(job_id=spec.id, step=step, total=total, losses=dict(losses)))

        def on_sample(step: int, image: Any) -> None:
            emit(TrainSample(job_id=spec.id, step=step, image=image.copy()))

        hooks = Hooks(step=on_step, sample=on_sample, cancelled=cancelled,
                      status=lambda text: emit(Status(job_id=spec.id, text=text)))
        folder = trainer_class(spec.model)(config, hooks).run()
        emit(Status(job_id=spec.id, text=f"Model saved to {folder}"))
        return JobResult(images=(), records=())
