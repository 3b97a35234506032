"""Runs job specs on engines and turns outcomes into events. Used by the app's worker thread and the CLI.

The runner imports engines lazily (torch lives there), keeps one engine instance per kind for the life
of the worker (engines hold model caches), and guarantees every job ends in exactly one of Finished,
Cancelled or Failed — an exception never escapes to the worker loop, so the queue goes on. A job whose
images were made but could not be saved ends in SaveFailed (a Failed that carries the images): work that
is not on disk is never reported as done.

Logging: a user error (UserError) is one line, no traceback; anything else is a bug and keeps its
traceback (in the log file, see core/logs.py).
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
                                    SaveFailed, Started)
from aigc_desktop.core.queue import JobQueue

log = logging.getLogger(__name__)

# Job kind -> "module:Class" of the engine that runs it. Imported on first use, in the worker thread.
ENGINES: dict[str, str] = {
    "fake": "aigc_desktop.engines.base:FakeEngine",
    "diffusion": "aigc_desktop.engines.diffusion.engine:DiffusionEngine",
    "stylegan": "aigc_desktop.engines.stylegan.engine:StyleGANEngine",
    "train": "aigc_desktop.training.engine:TrainEngine",
    "travel": "aigc_desktop.engines.travel:TravelEngine",
    "export": "aigc_desktop.engines.export:ExportEngine",
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
            end = self._save(spec.id, result, time.perf_counter() - start)
        except errors.CancelRequested:
            end = Cancelled(job_id=spec.id)
        except BaseException as exc:  # noqa: BLE001 - a job must never take the worker down
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            end = failed(spec.id, exc)
            _release_memory()
        emit(end)
        return end

    def _save(self, job_id: str, result: JobResult, elapsed: float) -> Finished | SaveFailed:
        """Save in the worker, before the GUI hears of the images: made work survives a GUI crash.

        Any error while saving (unwritable folder, full disk, a bad record) ends the job as SaveFailed with
        the reason and the images, never as Finished."""
        images, records = tuple(result.images), tuple(result.records)
        if not self.options.outputs_dir or not images:
            return Finished(job_id=job_id, images=images, records=records, elapsed=elapsed)
        from aigc_desktop.core.outputs import save_to_folder

        saved: list[str] = []
        try:
            for image, record in zip(images, records):  # one at a time: we know which ones made it
                saved.extend(str(p) for p in save_to_folder([image], [record], self.options.outputs_dir))
        except Exception as exc:  # noqa: BLE001 - whatever stopped the save, the user must hear it
            reason = errors.user_message(exc)
            log.warning("Job %s: could not save to %s: %s", job_id, self.options.outputs_dir, reason,
                        exc_info=not isinstance(exc, (OSError, errors.UserError)))
            partly = f" ({len(saved)} of {len(images)} saved)" if saved else ""
            return SaveFailed(job_id=job_id, message=f"Not saved: {reason}{partly}; the images stay open, "
                                                     "save them elsewhere", images=images, records=records,
                              paths=tuple(saved), elapsed=elapsed)
        return Finished(job_id=job_id, images=images, records=records, paths=tuple(saved), elapsed=elapsed)

    def close(self) -> None:
        for engine in self._engines.values():
            close = getattr(engine, "close", None)
            if close:
                close()
        self._engines.clear()


def failed(job_id: str, exc: BaseException) -> Failed:
    """The Failed event of an exception, logged: a user error as one line, a bug with its traceback."""
    if isinstance(exc, errors.UserError):
        log.warning("Job %s failed: %s", job_id, errors.user_message(exc))
        return Failed(job_id=job_id, message=errors.user_message(exc))
    if errors.is_out_of_memory(exc):  # the user's size or batch, not a bug: one line, details kept for the log
        log.warning("Job %s failed: %s", job_id, errors.first_line(exc))
        return Failed(job_id=job_id, message=errors.user_message(exc), details=errors.first_line(exc, 500))
    log.error("Job %s failed: %s", job_id, errors.user_message(exc), exc_info=exc)
    return Failed(job_id=job_id, message=errors.user_message(exc), details=errors.details(exc))


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
