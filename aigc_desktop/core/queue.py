"""The job queue: an explicit state machine, thread-safe, with no Qt.

    queued -> running -> finished | cancelled | failed
    queued -> cancelled (removed before it ran)

The GUI thread submits, removes and cancels; one worker thread per device takes jobs with `take()` and
reports the events of the job it runs with `report()`. Listeners get every event in the thread that
produced it (the Qt side forwards them to the GUI thread through a signal). Wakers are told (with no
argument, in the caller's thread) whenever a worker has something new to look at: a job submitted, a
running job asked to cancel, the queue closed (the engine client waits on its pipe and a wake-up).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

from aigc_desktop.core.jobs import (Cancelled, Failed, Finished, JobEvent, JobSpec, Queued, Started)


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def done(self) -> bool:
        return self in (JobState.FINISHED, JobState.CANCELLED, JobState.FAILED)


@dataclass
class QueueEntry:
    spec: JobSpec
    state: JobState = JobState.QUEUED
    message: str = ""
    cancel_event: threading.Event = field(default_factory=threading.Event)


Listener = Callable[[JobEvent], None]


class JobQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._entries: OrderedDict[str, QueueEntry] = OrderedDict()
        self._pending: deque[str] = deque()
        self._listeners: list[Listener] = []
        self._wakers: list[Callable[[], None]] = []
        self._closed = False

    # -- observers
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, event: JobEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def add_waker(self, waker: Callable[[], None]) -> None:
        self._wakers.append(waker)

    def remove_waker(self, waker: Callable[[], None]) -> None:
        if waker in self._wakers:
            self._wakers.remove(waker)

    def _wake(self) -> None:
        for waker in list(self._wakers):
            waker()

    # -- GUI side
    def submit(self, spec: JobSpec) -> str:
        """Validate and enqueue a spec; raises InvalidParameter (nothing enqueued) on a bad spec."""
        spec.validate()
        with self._cond:
            if self._closed:
                raise RuntimeError("The job queue is closed")
            if spec.id in self._entries:
                raise ValueError(f"Job {spec.id} is already in the queue")
            self._entries[spec.id] = QueueEntry(spec)
            self._pending.append(spec.id)
            self._cond.notify_all()
        self._notify(Queued(job_id=spec.id, title=spec.title))
        self._wake()
        return spec.id

    def cancel(self, job_id: str) -> bool:
        """Remove a queued job, or ask the running one to stop. False if it is already done/unknown."""
        with self._cond:
            entry = self._entries.get(job_id)
            if entry is None or entry.state.done:
                return False
            running = entry.state is JobState.RUNNING
            if running:
                entry.cancel_event.set()
            else:
                self._pending.remove(job_id)
                entry.state = JobState.CANCELLED
        if running:
            self._wake()
            return True
        self._notify(Cancelled(job_id=job_id))
        return True

    remove = cancel  # removing a queued job is cancelling it before it starts

    def cancel_all(self) -> None:
        for job_id in [e.spec.id for e in self.entries() if not e.state.done]:
            self.cancel(job_id)

    def clear_done(self) -> None:
        with self._cond:
            for job_id in [k for k, e in self._entries.items() if e.state.done]:
                del self._entries[job_id]

    # -- queries
    def entries(self) -> list[QueueEntry]:
        with self._cond:
            return list(self._entries.values())

    def state(self, job_id: str) -> JobState | None:
        with self._cond:
            entry = self._entries.get(job_id)
            return entry.state if entry else None

    def pending_count(self) -> int:
        with self._cond:
            return len(self._pending)

    def running(self) -> QueueEntry | None:
        with self._cond:
            return next((e for e in self._entries.values() if e.state is JobState.RUNNING), None)

    def current(self) -> QueueEntry | None:
        """The job the user sees as "the current one": the running job, else the next to run (a job just
        submitted that the worker has not taken yet)."""
        with self._cond:
            running = next((e for e in self._entries.values() if e.state is JobState.RUNNING), None)
            if running is None and self._pending:
                return self._entries[self._pending[0]]
            return running

    # -- worker side
    def take(self, timeout: float | None = None) -> QueueEntry | None:
        """Block until a job is pending (or the queue closes / times out) and mark it running."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending or self._closed, timeout=timeout):
                return None
            if self._closed and not self._pending:
                return None
            entry = self._entries[self._pending.popleft()]
            entry.state = JobState.RUNNING
            return entry

    def report(self, event: JobEvent) -> None:
        """Record an event of a running job (state changes) and pass it to the listeners."""
        with self._cond:
            entry = self._entries.get(event.job_id)
            if entry is not None:
                if isinstance(event, Finished):
                    entry.state = JobState.FINISHED
                elif isinstance(event, Cancelled):
                    entry.state = JobState.CANCELLED
                elif isinstance(event, Failed):
                    entry.state = JobState.FAILED
                    entry.message = event.message
                elif isinstance(event, Started):
                    entry.state = JobState.RUNNING
        self._notify(event)

    def close(self) -> None:
        """Stop handing out jobs; wakes a worker blocked in take()."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed
