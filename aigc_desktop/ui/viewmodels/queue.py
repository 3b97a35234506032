"""The job queue as the GUI sees it: submits specs, receives worker events in the GUI thread."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from aigc_desktop.core import jobs
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.queue import JobQueue, JobState

log = logging.getLogger(__name__)


@dataclass
class JobRow:
    job_id: str
    title: str
    state: JobState = JobState.QUEUED
    step: int = 0
    total: int = 0
    message: str = ""
    spec: jobs.JobSpec | None = None  # what was submitted (its target says where results go)
    unsaved: bool = False  # failed to save: its images exist (staged) but are not on disk


class QueueViewModel(QObject):
    """Signals carry plain data; every slot here runs in the GUI thread."""

    # Internal: the bridge from any thread to on_event (queued when emitted from the worker).
    _event = Signal(object)

    jobs_changed = Signal()  # rows added / removed / state changed
    job_started = Signal(str)
    progress_changed = Signal(str, int, int, float, object)  # id, step, total, elapsed, eta (float|None)
    status_changed = Signal(str, str)  # id, text
    preview_changed = Signal(str, object)  # id, PIL image
    preview_event = Signal(str, object)  # id, jobs.Preview (with the batch index)
    job_finished = Signal(str, object)  # id, jobs.Finished
    job_failed = Signal(str, str, str)  # id, message, details
    # id, jobs.SaveFailed: the images were made but not saved (never "done"; not a job_failed either: the
    # images ride along so they can be staged and saved elsewhere)
    job_unsaved = Signal(str, object)
    job_cancelled = Signal(str)

    def __init__(self, queue: JobQueue | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = queue or JobQueue()
        self.rows: dict[str, JobRow] = {}
        self._event.connect(self.on_event)
        self.queue.subscribe(self._event.emit)

    # -- commands
    def submit(self, spec: jobs.JobSpec) -> str:
        """Enqueue; raises UserError/InvalidParameter on a bad spec (the caller shows the message)."""
        self.rows[spec.id] = JobRow(spec.id, spec.title, total=spec.total_steps, spec=spec)
        try:
            return self.queue.submit(spec)
        except (UserError, ValueError):
            self.rows.pop(spec.id, None)
            raise

    def cancel(self, job_id: str) -> bool:
        return self.queue.cancel(job_id)

    def cancel_running(self) -> bool:
        """Cancel the current job (Esc, the Cancel button): the running one, or the one about to start."""
        current = self.queue.current()
        return self.queue.cancel(current.spec.id) if current else False

    def clear_done(self) -> None:
        self.queue.clear_done()
        self.rows = {k: r for k, r in self.rows.items() if not r.state.done}
        self.jobs_changed.emit()

    def spec(self, job_id: str) -> jobs.JobSpec | None:
        row = self.rows.get(job_id)
        return row.spec if row is not None else None

    def running_id(self) -> str | None:
        return next((r.job_id for r in self.rows.values() if r.state is JobState.RUNNING), None)

    # -- events, in the GUI thread
    @Slot(object)
    def on_event(self, event: jobs.JobEvent) -> None:
        row = self.rows.get(event.job_id)
        if row is None:
            row = self.rows[event.job_id] = JobRow(event.job_id, getattr(event, "title", event.job_id))
        if isinstance(event, jobs.Queued):
            self.jobs_changed.emit()
        elif isinstance(event, jobs.Started):
            row.state, row.total = JobState.RUNNING, event.total
            self.jobs_changed.emit()
            self.job_started.emit(event.job_id)
        elif isinstance(event, jobs.Progress):
            row.step, row.total = event.step, event.total
            self.progress_changed.emit(event.job_id, event.step, event.total, event.elapsed, event.eta)
        elif isinstance(event, jobs.Status):
            self.status_changed.emit(event.job_id, event.text)
        elif isinstance(event, jobs.Preview):
            self.preview_changed.emit(event.job_id, event.image)
            self.preview_event.emit(event.job_id, event)
        elif isinstance(event, jobs.Finished):
            row.state = JobState.FINISHED
            self.jobs_changed.emit()
            self.job_finished.emit(event.job_id, event)
        elif isinstance(event, jobs.SaveFailed):  # before Failed: it is one
            row.state, row.message = JobState.FAILED, event.message
            row.unsaved = True
            log.warning("Job %s: %s", event.job_id, event.message)
            self.jobs_changed.emit()
            self.job_unsaved.emit(event.job_id, event)
        elif isinstance(event, jobs.Failed):
            row.state, row.message = JobState.FAILED, event.message
            log.error("Job %s failed: %s\n%s", event.job_id, event.message, event.details)
            self.jobs_changed.emit()
            self.job_failed.emit(event.job_id, event.message, event.details)
        elif isinstance(event, jobs.Cancelled):
            row.state = JobState.CANCELLED
            self.jobs_changed.emit()
            self.job_cancelled.emit(event.job_id)
