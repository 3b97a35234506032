"""Application entry point: the window is shown first; torch loads afterwards in the worker thread."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Sequence

import aigc_desktop  # noqa: F401 - offline flags first


def main(argv: Sequence[str] | None = None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from aigc_desktop.core.settings import Settings
    from aigc_desktop.ui.main_window import MainWindow

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication([sys.argv[0], *(argv or [])])
    app.setApplicationName("AIGC Desktop")
    app.setOrganizationName("aigc-desktop")
    from aigc_desktop.ui.theme import apply_theme

    settings = Settings.load()
    apply_theme(settings.get("theme"), app)
    window = MainWindow(settings)
    window.show()
    QTimer.singleShot(0, window.start_worker)
    # Ctrl+C / SIGTERM in the terminal close the window the normal way (settings saved, worker stopped).
    # Python only runs signal handlers between bytecodes, so a cheap timer gives it the chance.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.close())
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(250)
    code = app.exec()
    window.stop_worker()  # never leave the worker running past the event loop
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
