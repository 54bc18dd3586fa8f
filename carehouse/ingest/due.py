"""Which landed files belong to a business date, and a folder holding just those.

The hospital names each batch file after the day it covers (``admissions_2026-03-20.csv``,
``labs_bundle_2026-03-20.json``, ``patients_2026-03-20_resent.csv``). The nightly run for a
business date loads every file of each batch source **dated on or before** that date that
is not loaded yet: a file that arrives late (yesterday's labs landing today) is picked up by
the next run instead of being stranded, and a file dated after the business date waits for
its own run (a backfill of March loads March's files in order, not April's). A file whose
name carries no date cannot be placed: it is due at once, and the load summary names it like
any other file. Files already loaded are skipped by the loader itself (by content), so a
rerun of any date loads nothing twice.

The loaders read a file or a folder; the due files are offered to them as a folder of
symbolic links under ``CAREHOUSE_HOME`` (same names, so raw's ``_source_file`` is the landed
name), removed after the load.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from carehouse.core.settings import Settings
from carehouse.ingest.admissions import ADMISSIONS
from carehouse.ingest.labs import LABS
from carehouse.ingest.loader import FileSource
from carehouse.ingest.patients import PATIENTS

FILE_SOURCES: dict[str, FileSource] = {
    source.name: source for source in (PATIENTS, ADMISSIONS, LABS)
}

_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


def yesterday(timezone: str) -> date:
    """The business date a nightly run covers by default: yesterday in the hospital's zone."""
    return datetime.now(ZoneInfo(timezone)).date() - timedelta(days=1)


def file_date(name: str) -> date | None:
    """The first valid ``YYYY-MM-DD`` in a file name, or None."""
    for match in _NAME_DATE.finditer(name):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
    return None


def due_files(settings: Settings, source: str, business_date: date) -> list[Path]:
    """The landed files of ``source`` due by ``business_date`` (see the module docstring)."""
    spec = FILE_SOURCES[source]
    folder = settings.landing_dir / spec.landing_subdir
    if not folder.is_dir():
        return []
    patterns = (spec.pattern,) if isinstance(spec.pattern, str) else spec.pattern
    found = {path for pattern in patterns for path in folder.glob(pattern) if path.is_file()}
    return sorted(
        path for path in found if (dated := file_date(path.name)) is None or dated <= business_date
    )


@contextmanager
def due_folder(settings: Settings, source: str, business_date: date, run_id: str) -> Iterator[Path]:
    """A folder of links to the files due (possibly empty), removed afterwards."""
    folder = settings.home / "due" / run_id / source
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        for path in due_files(settings, source, business_date):
            (folder / path.name).symlink_to(path.resolve())
        yield folder
    finally:
        shutil.rmtree(folder)
        if not any(folder.parent.iterdir()):
            folder.parent.rmdir()
