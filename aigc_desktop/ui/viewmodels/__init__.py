"""QObjects living in the GUI thread that hold UI state and emit <name>_changed-style signals."""
