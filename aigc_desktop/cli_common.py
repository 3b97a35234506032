"""What every command-line front shares (cli.py, cli_stylegan.py, cli_interpolate.py): exit codes, the
one-line error, argument parsers for numbers, finding a model by path or name, and running one job with
progress on stderr. The fronts import this module, never each other's entry point, so there is no import
circle between cli.py and its parts (tests/test_layers.py holds it). No torch at import time.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from aigc_desktop.core import catalog
from aigc_desktop.core.errors import UserError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


class CliError(UserError):
    """A one-line error for the user; exit code 2."""


def echo(text: str, limit: int = 24) -> str:
    """A flag's value as an error repeats it: a 5000-digit seed is cut, not printed in full."""
    return text if len(text) <= limit else f"{text[:limit - 1]}… ({len(text)} characters)"


def whole_number(text: str) -> int:
    """argparse type of a whole number. Range checks are core.params' (one set of rules for every way in);
    this only parses."""
    if len(text) > 40:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{echo(text)}'")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{echo(text)}'") from None
    return value


def number(text: str) -> float:
    """argparse type of a number (nan and inf parse; core.params refuses them with the parameter's range)."""
    try:
        return float(text[:400])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{echo(text)}'") from None


def load_settings():
    from aigc_desktop.core.settings import Settings

    return Settings.load()


def resolve_model(text: str, settings=None) -> catalog.ModelInfo:
    """A model by path, or by the name of a discovered model. One unreadable file in the models folders
    never stops this: discovery lists it as unreadable and the search goes on."""
    path = Path(text).expanduser()
    try:
        exists = path.exists() or path.is_symlink()
    except OSError as exc:  # a name longer than the file system allows
        raise CliError(f"Model not found: {echo(text, 80)} ({exc.strerror or exc})") from None
    if exists:
        return catalog.info_for(path)
    settings = settings or load_settings()
    for info in catalog.discover(settings.model_search_dirs()):
        if info.name == text:
            return info
    raise CliError(f"Model not found: {echo(text, 80)}")


def progress_bar(step: int, total: int, width: int = 24) -> str:
    filled = int(width * step / max(total, 1))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def run_job(spec: Any, quiet: bool = False):
    """Run one job with progress on stderr and Ctrl+C as cancel; returns its terminal event."""
    from aigc_desktop.core import jobs
    from aigc_desktop.core.runner import EngineOptions, Runner

    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())

    def emit(event: jobs.JobEvent) -> None:
        if quiet:
            return
        if isinstance(event, jobs.Progress):
            eta = f" ETA {event.eta:.1f}s" if event.eta is not None else ""
            print(f"\r{progress_bar(event.step, event.total)} {event.step}/{event.total} {event.elapsed:.1f}s{eta}  ",
                  end="", file=sys.stderr, flush=True)
        elif isinstance(event, jobs.Status):
            print(event.text, file=sys.stderr, flush=True)

    settings = load_settings()
    runner = Runner(EngineOptions(device=settings.get("device"), dtype=settings.get("dtype"),
                                  threads=settings.get("threads"), offload=settings.get("offload")))
    try:
        return runner.run(spec, emit, cancel.is_set)
    finally:
        signal.signal(signal.SIGINT, previous)
        if not quiet:
            print(file=sys.stderr)


def failure_code(end) -> int | None:
    """The exit code of a cancelled or failed job (its one line on stderr); None when it finished."""
    from aigc_desktop.core import jobs

    if isinstance(end, jobs.Cancelled):
        print("Cancelled.", file=sys.stderr)
        return EXIT_CANCELLED
    if isinstance(end, jobs.Failed):
        print(f"error: {end.message}", file=sys.stderr)
        return EXIT_FAILED
    return None
