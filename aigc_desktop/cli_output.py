"""Printing for the command-line front ends."""

from __future__ import annotations

import sys


def print_text(text: str) -> None:
    """Print, even where the terminal cannot show every character of a prompt (replaced, not a traceback)."""
    try:
        print(text)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "ascii"
        print(text.encode(encoding, "replace").decode(encoding))
