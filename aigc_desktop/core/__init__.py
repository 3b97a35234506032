"""Plain-Python core: job specs, queue, settings, metadata, model catalog. No Qt, no torch at import."""
