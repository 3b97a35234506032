"""Test support shipped with the package: tiny models built from configs, used by tests and benchmarks."""
