"""Patient master snapshots read into the raw table's shape, as CSV parts for dlt."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from dlt_sources._common.csvsource import csv_blocks, reject_file
from dlt_sources._common.parts import Block
from dlt_sources.files import FileBatch, LandedFile
from dlt_sources.patients.settings import LAYOUT, NO_SNAPSHOT_DATE, SNAPSHOT_DATE

# An ISO date not glued to other digits: `patients_2025-03-01.csv`, `2025-03-01_resent.csv`.
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")


def snapshot_date(file_name: str) -> date | None:
    """The one valid calendar date in a file name, or None (none, invalid, or ambiguous)."""
    found: set[date] = set()
    for text in _DATE_IN_NAME.findall(file_name):
        try:
            found.add(date.fromisoformat(text))
        except ValueError:
            return None  # 2025-02-30: a broken name, not a date to guess from
    return found.pop() if len(found) == 1 else None


def name_error(file_name: str) -> str | None:
    """Why a file name cannot be loaded (it gives no snapshot date), or None."""
    if snapshot_date(file_name) is None:
        return "no single valid YYYY-MM-DD date in the file name (patients_YYYY-MM-DD.csv)"
    return None


def snapshot_blocks(file: LandedFile, batch: FileBatch) -> Iterator[Block]:
    """One snapshot's loadable rows with its date; a file without a date is quarantined whole."""
    day = snapshot_date(file.name)
    if day is None:
        reject_file(file, batch, NO_SNAPSHOT_DATE, name_error(file.name) or NO_SNAPSHOT_DATE)
        return
    yield from csv_blocks(file, batch, LAYOUT, {SNAPSHOT_DATE: day.isoformat()})
