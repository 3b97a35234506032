"""Driving Qt's event loop from the screenshot scripts (they run the real window offscreen, no test runner)."""

from __future__ import annotations

import time
from typing import Callable


def pump(seconds: float = 0.2) -> None:
    """Let the window work for `seconds`: paint, take engine events, run timers."""
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


def run_until(cond: Callable[[], object], timeout: float = 600) -> bool:
    """Run the event loop until `cond()` holds or `timeout` seconds pass; whether it holds."""
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    deadline = time.time() + timeout
    while time.time() < deadline and not cond():
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    return bool(cond())
