"""`python -m aigc_desktop` runs the command-line interface (no arguments: the app)."""

from aigc_desktop.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
