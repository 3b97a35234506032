"""The Qt (PySide6) side: view-models that mirror the core, thin widgets, the worker thread."""
