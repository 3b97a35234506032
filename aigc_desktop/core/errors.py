"""Errors that reach the user as one clear line, and the mapping of any exception to such a line."""

from __future__ import annotations

import traceback


class UserError(Exception):
    """A problem the user can act on (bad file, bad parameter). str(exc) is the one-line message."""


class InvalidParameter(UserError, ValueError):
    """A generation parameter is out of range or malformed."""


class ModelLoadError(UserError):
    """A model file or folder could not be read or identified."""


class CancelRequested(Exception):
    """Raised inside an engine to stop the running job at once (no final decode); not an error."""


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def first_line(exc: BaseException | str, limit: int = 200) -> str:
    """The first line of an error's text (library messages run to many lines), at most `limit` characters."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    line = text[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def is_out_of_memory(exc: BaseException) -> bool:
    # Checked by name so core needs no torch import (torch.cuda.OutOfMemoryError, torch.OutOfMemoryError).
    if type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "mps backend out of memory" in text


def user_message(exc: BaseException) -> str:
    """The one line shown to the user for an exception raised by a job."""
    if isinstance(exc, UserError):
        return _one_line(str(exc))
    if is_out_of_memory(exc):
        return ("Out of memory: try a smaller size or batch, close other GPU programs, "
                "or let the app offload to CPU (Settings > Memory).")
    if isinstance(exc, FileNotFoundError):
        name = exc.filename or str(exc)
        return _one_line(f"File not found: {name}")
    if isinstance(exc, PermissionError):
        return _one_line(f"Permission denied: {exc.filename or exc}")
    if isinstance(exc, (ValueError, TypeError)):
        return _one_line(f"Invalid input: {exc}")
    return _one_line(f"{type(exc).__name__}: {exc}")


def details(exc: BaseException) -> str:
    """The full traceback, for the log."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
