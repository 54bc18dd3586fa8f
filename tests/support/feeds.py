"""Tonight's feeds for the flow tests: hand-checked admissions and the other sources."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

from carehouse.core.settings import Settings
from carehouse.demo.vitals import produce_vitals
from carehouse.ingest.vitals.drain import drain_vitals
from tests.support.clinical import GLUCOSE, PATIENT_HEADER, observation
from tests.support.warehouse import ADMISSIONS, RAW_COLUMNS

# Lands with tonight's feeds but is dated the day after the business date: it must wait.
LATE_LABS_FILE = "labs_2026-03-21.ndjson"


def write_other_feeds(settings: Settings, landing: Path) -> int:
    """Tonight's other feeds: the patient master of the admissions' patients, two lab
    results, and a few vital signs drained from a topic of this test's own."""
    patients = sorted({record.patient_id for record in ADMISSIONS if record.patient_id})
    folder = landing / "patients"
    folder.mkdir(parents=True)
    rows = [
        f"{patient},Given,Family,1970-01-01,F,1 Road,AB1 2CD,INS1,GOLD,2026-03-20T08:00:00"
        for patient in patients
    ]
    (folder / "patients_2026-03-20.csv").write_text(
        PATIENT_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    labs = landing / "labs"
    labs.mkdir(parents=True)
    results = [
        observation("L1", "P1", GLUCOSE, "2026-01-03T08:00:00Z", value=150, unit="mg/dL",
                    low=70, high=99, interpretation="H"),
        observation("L2", "P2", GLUCOSE, "2026-01-11T08:00:00Z", value=80, unit="mg/dL",
                    low=70, high=99, interpretation="N"),
    ]  # fmt: skip
    (labs / "labs_2026-03-20.ndjson").write_text(
        "".join(json.dumps(result) + "\n" for result in results), encoding="utf-8"
    )
    tomorrow = observation("L3", "P1", GLUCOSE, "2026-03-21T08:00:00Z", value=90, unit="mg/dL",
                           low=70, high=99, interpretation="N")  # fmt: skip
    (labs / LATE_LABS_FILE).write_text(json.dumps(tomorrow) + "\n", encoding="utf-8")
    produced = produce_vitals(
        settings, seed=1, end_date=date(2026, 1, 3), days=1, scale=0.01, patients=["P1"]
    )
    drained = drain_vitals(settings, until_caught_up=True)
    assert drained.received == produced
    return len(patients)


def write_landing_csvs(landing: Path) -> int:
    """The hand-checked admissions as the hospital would send them: one CSV per file name."""
    files: dict[str, list[tuple[str | None, ...]]] = defaultdict(list)
    for record in ADMISSIONS:
        files[record.source_file].append(tuple(record[:10]))
    folder = landing / "admissions"
    folder.mkdir(parents=True)
    for name, rows in files.items():
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(RAW_COLUMNS[:10])
            writer.writerows([["" if v is None else v for v in row] for row in rows])
    return sum(len(rows) for rows in files.values())
