"""Failures of a load that a user can act on (the CLI prints them as one line)."""

from __future__ import annotations


class LoadInProgress(RuntimeError):
    """Another process is loading the same source right now."""
