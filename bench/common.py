"""Pieces the benchmarks share: the bare diffusers call they measure against, and alternating timings."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def bare_diffusers(model, params, size: int, steps: int) -> Callable[[], float]:
    """A timed bare diffusers call on an already loaded model (our engine's `LoadedModel`), with the job's
    scheduler, steps, CFG, size and a CPU generator seeded like the job: what the app's path is compared to."""
    import torch

    from aigc_desktop.engines.diffusion.schedulers import make_scheduler

    pipe = type(model.pipe)(**{**model.pipe.components,
                                "scheduler": make_scheduler(params.scheduler, model.scheduler_config)})
    pipe.set_progress_bar_config(disable=True)

    def bare() -> float:
        t = time.perf_counter()
        pipe(params.prompt, negative_prompt="", num_inference_steps=steps, guidance_scale=params.cfg_scale,
             width=size, height=size, generator=torch.Generator("cpu").manual_seed(params.seed))
        return time.perf_counter() - t

    return bare


def alternating_ratio(ours: Callable[[], float], theirs: Callable[[], float],
                      repeats: int) -> tuple[float, float, float]:
    """(median ours / median theirs, median ours, median theirs), the two run one after the other so that
    a machine's drift (other load, clocks) falls on both alike; one warm-up call of `theirs` first."""
    theirs()
    a, b = [], []
    for _ in range(repeats):
        b.append(theirs())
        a.append(ours())
    ma, mb = statistics.median(a), statistics.median(b)
    return ma / mb, ma, mb
