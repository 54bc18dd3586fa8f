"""Deterministic simulators of what a hospital sends, for demos, tests and benchmarks."""
