"""Engines: torch / diffusers model code. No Qt. Each engine turns a job spec into events."""
