"""Hostile and broken files: shared builders and the guards every test here runs under.

Every test runs under a time limit (SIGALRM interrupts even a blocking open() of a FIFO), and the CLI
helper asserts what a user must see for bad input: one line on stderr, no traceback.
"""

from __future__ import annotations

import os
import signal
import struct
import json

import pytest

TIME_LIMIT_S = 20  # each test takes well under a second or two; a hang fails instead of blocking the suite


class TimeLimitExceeded(BaseException):
    """Not an Exception: no `except Exception` (or hypothesis's shrinking) may swallow it."""


@pytest.fixture(autouse=True)
def time_limit():
    def on_alarm(signum, frame):
        raise TimeLimitExceeded(f"the test ran past {TIME_LIMIT_S} s (a hang or an unbounded read)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """main() in-process: (exit code, stdout, stderr), asserting no traceback reached the user."""
    from aigc_desktop.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out, out.err
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    """The single 'error: ...' line of a failed command (progress lines aside), short."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert len(lines[0]) < 400, lines[0]
    return lines[0]


def safetensors_bytes(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    """A safetensors file from a header (dict, or raw JSON bytes), its data, and optionally a lying length."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def make_fifo(path) -> str:
    os.mkfifo(path)
    return str(path)
