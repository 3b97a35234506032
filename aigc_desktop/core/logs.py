"""The app's log: one line per problem on the console, the details (tracebacks) in a rotating log file.

    from aigc_desktop.core import logs
    logs.setup()            # once, at the start of the app or the CLI (before the first log call)
    logs.log_dir()          # the folder "Help > Open log folder" opens

The file lives in the user data folder (`<data_dir>/logs/aigc-desktop.log`, 1 MiB, 3 old files kept).
A user error is logged as one line with no traceback (core/runner.py decides); a bug keeps its traceback,
which goes to the file only: the console shows its first line and where the details are. The engine
process sends its records to the window's process (engines/host.py), so both land in the same file.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from aigc_desktop.core.paths import data_dir

LOG_FILE = "aigc-desktop.log"
MAX_BYTES = 1 << 20
BACKUPS = 3
_MARK = "_aigc_log_handler"  # set on the handlers we install, so setup() can run twice


def log_dir() -> Path:
    return data_dir() / "logs"


def log_file() -> Path:
    return log_dir() / LOG_FILE


def log_file_in_use() -> Path | None:
    """The file setup() writes to, or None when it has not run (or could not open one)."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, _MARK, False) and isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


class ConsoleFormatter(logging.Formatter):
    """One line per record: a traceback is replaced by a pointer to the log file."""

    def __init__(self, file: Path | None) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.file = file

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(record.getMessage().split("\n")[0].split())
        text = f"{record.levelname} {record.name}: {line}"
        if (record.exc_info or record.exc_text) and self.file is not None:
            text += f" (details in {self.file})"
        return text


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests and GUI launchers replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup(level: int = logging.INFO, console: bool = True, file: bool = True,
          console_level: int | None = None) -> Path | None:
    """Install the console and file handlers on the root logger; returns the log file (None when the
    folder cannot be written: then the console is all there is, and it says so once). `console_level`:
    the least the console shows (the CLI: warnings only), the file still gets `level`."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    path: Path | None = None
    problem = ""
    if file:
        try:
            log_dir().mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(log_file(), maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                           encoding="utf-8")
        except OSError as exc:
            problem = f"Cannot write the log file in {log_dir()}: {exc.strerror or exc}"
        else:
            handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
            setattr(handler, _MARK, True)
            root.addHandler(handler)
            path = log_file()
    if console:
        stream = _Stderr()
        stream.setFormatter(ConsoleFormatter(path))
        if console_level is not None:
            stream.setLevel(console_level)
        setattr(stream, _MARK, True)
        root.addHandler(stream)
    if problem:
        logging.getLogger(__name__).warning(problem)
    return path
