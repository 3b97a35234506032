"""Runs job specs on engines and turns outcomes into events. Used by the app's worker thread and the CLI.

The runner imports engines lazily (torch lives there), keeps one engine instance per kind for the life
of the worker (engines hold model caches), and guarantees every job ends in exactly one of Finished,
Cancelled or Failed — an exception never escapes to the worker loop, so the queue goes on.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aigc_desktop.core import errors
from aigc_desktop.core.jobs import (Cancelled, Emit, Failed, Finished, IsCancelled, JobResult, JobSpec,
                                    Started)
from aigc_desktop.core.queue import JobQueue

log = logging.getLogger(__name__)

# Job kind -> "module:Class" of the engine that runs it. Imported on first use, in the worker thread.
ENGINES: dict[str, str] = {
    "fake": "aigc_desktop.engines.base:FakeEngine",
    "diffusion": "aigc_desktop.engines.diffusion.engine:DiffusionEngine",
    "stylegan": "aigc_desktop.engines.stylegan.engine:StyleGANEngine",
    "train": "aigc_desktop.training.engine:TrainEngine",
}


@dataclass(frozen=True)
class EngineOptions:
    """Settings that engines need, snapshotted from the settings on the GUI thread."""

    device: str = "auto"
    dtype: str = "auto"
    memory_budget_gb: float = 0.0  # model cache budget; 0 = automatic
    threads: int = 0  # torch CPU threads; 0 = automatic (leave one core to the UI on small machines)
    offload: str = "auto"  # auto | never | always
    outputs_dir: str = ""  # when set, the worker saves every finished image here (PNG + metadata)


class Engine(Protocol):
    def run(self, spec: Any, emit: Emit, cancelled: IsCancelled) -> JobResult: ...


class Runner:
    def __init__(self, options: EngineOptions | None = None, engines: dict[str, Any] | None = None) -> None:
        self.options = options or EngineOptions()
        self._engines: dict[str, Any] = dict(engines or {})

    def engine_for(self, kind: str) -> Any:
        engine = self._engines.get(kind)
        if engine is None:
            target = ENGINES.get(kind)
            if target is None:
                raise errors.UserError(f"No engine can run jobs of kind '{kind}'")
            module_name, cls_name = target.split(":")
            engine = getattr(importlib.import_module(module_name), cls_name)(self.options)
            self._engines[kind] = engine
        return engine

    def run(self, spec: JobSpec, emit: Emit, cancelled: IsCancelled) -> Finished | Cancelled | Failed:
        """Run one job; emits Started, then the engine's events, then exactly one terminal event."""
        start = time.perf_counter()
        emit(Started(job_id=spec.id, total=spec.total_steps))
        try:
            spec.validate()
            if cancelled():
                raise errors.CancelRequested()
            result = self.engine_for(spec.kind).run(spec, emit, cancelled)
            paths = self._save(result)
            end: Finished | Cancelled | Failed = Finished(job_id=spec.id, images=tuple(result.images),
                                                        records=tuple(result.records), paths=paths,
                                                        elapsed=time.perf_counter() - start)
        except errors.CancelRequested:
            end = Cancelled(job_id=spec.id)
        except BaseException as exc:  # noqa: BLE001 - a job must never take the worker down
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            log.warning("Job %s failed: %s", spec.id, exc, exc_info=not isinstance(exc, errors.UserError))
            end = Failed(job_id=spec.id, message=errors.user_message(exc), details=errors.details(exc))
            _release_memory()
        emit(end)
        return end

    def _save(self, result: JobResult) -> tuple[str, ...]:
        """Save in the worker, before the GUI hears of the images: made work survives a GUI crash."""
        if not self.options.outputs_dir or not result.images:
            return ()
        from aigc_desktop.core.outputs import save_to_folder

        try:
            return tuple(str(p) for p in save_to_folder(result.images, result.records, self.options.outputs_dir))
        except OSError as exc:
            # The images still reach the canvas; the user is told saving failed.
            log.error("Could not save outputs to %s: %s", self.options.outputs_dir, exc)
            return ()

    def close(self) -> None:
        for engine in self._engines.values():
            close = getattr(engine, "close", None)
            if close:
                close()
        self._engines.clear()


def _release_memory() -> None:
    """After a failure (often out of memory) give cached GPU memory back so the next job can run."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def serve(queue: JobQueue, runner: Runner, stop: threading.Event, poll: float = 0.1) -> None:
    """The worker loop: take jobs one at a time until `stop` is set or the queue closes."""
    while not stop.is_set():
        entry = queue.take(timeout=poll)
        if entry is None:
            if queue.closed:
                break
            continue
        runner.run(entry.spec, queue.report, entry.cancel_event.is_set)
