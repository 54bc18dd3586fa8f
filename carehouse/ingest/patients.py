"""Patient master snapshots from the landing folder into `raw_patients.patients`."""

from __future__ import annotations

from pathlib import Path

from carehouse.core.settings import Settings
from carehouse.ingest.loader import csv_file_source, load_files
from carehouse.ingest.summary import LoadSummary
from dlt_sources.patients import patients
from dlt_sources.patients import settings as names
from dlt_sources.patients.helpers import name_error

__all__ = ["PATIENTS", "LoadSummary", "load_patients"]

PATIENTS = csv_file_source(names, patients, name_error)


def load_patients(settings: Settings, path: Path | None = None) -> LoadSummary:
    """Load new patient snapshot files (a file, or a folder; default the landing folder).

    Idempotent: a file whose content was loaded before, under any name, is skipped.
    Every record is loaded or quarantined with a reason; a file whose header lacks
    expected columns, or whose name has no snapshot date, is quarantined whole and
    named in the summary.
    """
    return load_files(settings, PATIENTS, path)
