"""The worker thread that owns the engines. The GUI thread never runs torch.

Events from the running job are emitted by `JobQueue.report` in this thread; `QueueViewModel.on_event`
(a slot of a GUI-thread QObject) receives them through a queued connection.
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QThread

from aigc_desktop.core.queue import JobQueue
from aigc_desktop.core.runner import EngineOptions, Runner, serve

log = logging.getLogger(__name__)


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
            _warm_imports()
        try:
            serve(self.queue, runner, self._stop)
        finally:
            runner.close()

    def stop(self, timeout_ms: int = 30000) -> bool:
        """Cancel the running job, stop taking new ones, and wait for the thread to end."""
        self._stop.set()
        running = self.queue.running()
        if running is not None:
            self.queue.cancel(running.spec.id)
        if not self.isRunning():
            return True
        return self.wait(timeout_ms)


def _warm_imports() -> None:
    """Import torch and diffusers here, after the window is up, so the first Generate starts sooner."""
    try:
        import aigc_desktop.engines.diffusion.engine  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken install shows up as a failed job instead
        log.warning("Could not preload the diffusion engine: %s", exc)
