"""Admissions CSV files from the landing folder into `raw_admissions.admissions`."""

from __future__ import annotations

from pathlib import Path

from carehouse.core.settings import Settings
from carehouse.ingest.loader import csv_file_source, load_files
from carehouse.ingest.summary import LoadSummary
from dlt_sources.admissions import admissions
from dlt_sources.admissions import settings as names

__all__ = ["ADMISSIONS", "LoadSummary", "load_admissions"]

ADMISSIONS = csv_file_source(names, admissions)


def load_admissions(settings: Settings, path: Path | None = None) -> LoadSummary:
    """Load new admissions files (a file, or a folder; default the landing folder) as the loader.

    Idempotent: a file whose content was loaded before, under any name, is skipped.
    Every record is loaded or quarantined with a reason; a file whose header lacks
    expected columns is quarantined whole and named in the summary.
    """
    return load_files(settings, ADMISSIONS, path)
