"""Lab results (FHIR R4 Observation NDJSON and Bundles) from the landing folder into raw."""

from __future__ import annotations

from pathlib import Path

from carehouse.core.settings import Settings
from carehouse.ingest.loader import FileSource, load_files
from carehouse.ingest.summary import LoadSummary
from dlt_sources.labs import labs
from dlt_sources.labs.settings import (
    DATASET,
    FILE_GLOBS,
    LANDING_SUBDIR,
    QUARANTINE_TABLE,
    SOURCE,
    TABLE,
)

__all__ = ["LABS", "LoadSummary", "load_labs"]

LABS = FileSource(
    name=SOURCE,
    dataset=DATASET,
    table=TABLE,
    quarantine_table=QUARANTINE_TABLE,
    landing_subdir=LANDING_SUBDIR,
    pattern=FILE_GLOBS,
    dlt_source=labs,
)


def load_labs(settings: Settings, path: Path | None = None) -> LoadSummary:
    """Load new lab files, NDJSON or Bundle (a file, or a folder; default the landing folder).

    Idempotent: a file whose content was loaded before, under any name, is skipped.
    Every record (line, or Bundle entry) is loaded into `raw_labs.observations` or
    quarantined with a reason; new Observation fields are kept and reported.
    """
    return load_files(settings, LABS, path)
