"""Benchmarks: each stage measured in its own process, beside a baseline of the same run."""
