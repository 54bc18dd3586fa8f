"""The batch (file) sources, by name, for the orchestrator and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from carehouse.core.settings import Settings
from carehouse.ingest.admissions import load_admissions
from carehouse.ingest.labs import load_labs
from carehouse.ingest.patients import load_patients
from carehouse.ingest.summary import LoadSummary

BatchLoader = Callable[[Settings, Path | None], LoadSummary]

# In load order: the patient master before the feeds that refer to its patients.
BATCH_SOURCES: dict[str, BatchLoader] = {
    "patients": load_patients,
    "admissions": load_admissions,
    "labs": load_labs,
}


def load_batch_source(settings: Settings, source: str, path: Path | None = None) -> LoadSummary:
    """Load one named file source (idempotent: files already loaded are skipped)."""
    try:
        loader = BATCH_SOURCES[source]
    except KeyError:
        raise ValueError(
            f"unknown batch source {source!r}; known: {', '.join(BATCH_SOURCES)}"
        ) from None
    return loader(settings, path)
