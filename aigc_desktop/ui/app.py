"""Application entry point: the window is shown first; the engine process (where torch loads) starts after."""

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

    from aigc_desktop.core import logs

    logs.setup(logging.INFO)  # one line per problem in the terminal, the details in the log file
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
    window.stop_worker()  # never leave the engine client running past the event loop
    from aigc_desktop.ui import engine_client

    engine_client.shutdown()  # every engine process gone (within 3 s) before the interpreter ends
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
