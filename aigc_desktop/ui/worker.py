"""The thread transport: a worker QThread that owns the engines (UI tests with the fake engine, demos).

The app runs jobs in the engine process (aigc_desktop/ui/engine_client.py, whose EngineClient picks this
transport by itself when given engine instances). Events from the running job are emitted by
`JobQueue.report` in this thread; `QueueViewModel.on_event` (a slot of a GUI-thread QObject) receives them
through a queued connection.
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QThread

from aigc_desktop.core.queue import JobQueue
from aigc_desktop.core.runner import EngineOptions, Runner, serve

log = logging.getLogger(__name__)

# Workers whose job did not stop in time: kept referenced (and parentless) until they end, so that no
# QThread is ever destroyed while it runs (Qt aborts the whole app when that happens).
_unfinished: set["Worker"] = set()


class Worker(QThread):
    """Runs jobs from `queue` one at a time until stopped. One worker per device."""

    def __init__(self, queue: JobQueue, options: EngineOptions | None = None, engines: dict | None = None,
                 preload: bool = True, parent=None) -> None:
        """`engines` overrides engines by job kind (tests and demos use the fake engine)."""
        super().__init__(parent)
        self.setObjectName("aigc-worker")
        self.queue = queue
        self._engines = engines
        self._options = options or EngineOptions()
        self._stop = threading.Event()
        self._preload = preload

    def run(self) -> None:  # in the worker thread
        runner = Runner(self._options, self._engines)
        if self._preload and not self._engines:
            from aigc_desktop.engines.host import _warm_imports

            _warm_imports()
        try:
            serve(self.queue, runner, self._stop)
        finally:
            runner.close()

    def stop(self, timeout_ms: int = 30000) -> bool:
        """Cancel the running job, stop taking new ones, and wait for the thread to end (at most timeout_ms).

        A thread cannot be killed: when its step does not end in time it is parked until it does."""
        self._stop.set()
        running = self.queue.running()
        if running is not None:
            self.queue.cancel(running.spec.id)
        if not self.isRunning():
            return True
        if self.wait(timeout_ms):
            return True
        log.warning("The worker thread did not stop within %d ms; it is left to finish on its own", timeout_ms)
        self.setParent(None)
        _unfinished.add(self)
        self.finished.connect(lambda: _unfinished.discard(self))
        return False
