"""Patient master snapshots from the landing folder into `raw_patients.patients`."""

from __future__ import annotations

from pathlib import Path

from carehouse.ingest.loader import FileSource, load_files
from carehouse.ingest.summary import LoadSummary
from carehouse.settings import Settings
from dlt_sources.patients import patients
from dlt_sources.patients.helpers import name_error
from dlt_sources.patients.settings import (
    DATASET,
    FILE_GLOB,
    LANDING_SUBDIR,
    QUARANTINE_TABLE,
    SOURCE,
    TABLE,
)

__all__ = ["PATIENTS", "LoadSummary", "load_patients"]

PATIENTS = FileSource(
    name=SOURCE,
    dataset=DATASET,
    table=TABLE,
    quarantine_table=QUARANTINE_TABLE,
    landing_subdir=LANDING_SUBDIR,
    pattern=FILE_GLOB,
    dlt_source=patients,
    name_error=name_error,
)


def load_patients(settings: Settings, path: Path | None = None) -> LoadSummary:
    """Load new patient snapshot files (a file, or a folder; default the landing folder).

    Idempotent: a file whose content was loaded before, under any name, is skipped.
    Every record is loaded or quarantined with a reason; a file whose header lacks
    expected columns, or whose name has no snapshot date, is quarantined whole and
    named in the summary.
    """
    return load_files(settings, PATIENTS, path)
