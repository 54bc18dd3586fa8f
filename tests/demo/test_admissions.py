"""The demo admissions generator: deterministic, realistic, and as dirty as promised."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from carehouse.demo.admissions import HEADER, generate_admissions
from carehouse.demo.departments import DEPARTMENTS
from carehouse.demo.stays import INSURERS

END = date(2025, 3, 31)
DEPARTMENT_NAMES = {department.name for department in DEPARTMENTS}


def generate(folder: Path, *, seed: int = 7, days: int = 30, per_day: int = 300) -> list[Path]:
    return generate_admissions(
        folder, seed=seed, end_date=END, days=days, admissions_per_day=per_day
    )


def records(path: Path) -> list[list[str]]:
    """Parsed records of a file, the header and any truncated last record left out."""
    text = path.read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return [row for row in rows[1:] if len(row) == len(HEADER.split(","))]


def parse(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate(tmp_path_factory.mktemp("landing"))


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, month: list[Path]) -> None:
    again = generate(tmp_path / "again")
    assert [p.name for p in again] == [p.name for p in month]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(again, month, strict=True))
    other = generate(tmp_path / "other", seed=8)
    assert [p.read_bytes() for p in other] != [p.read_bytes() for p in month]


def test_one_file_per_day_plus_one_resent_copy(month: list[Path]) -> None:
    days = [END - timedelta(days=offset) for offset in range(29, -1, -1)]
    assert [p.name for p in month[:-1]] == [f"admissions_{day.isoformat()}.csv" for day in days]
    resent = month[-1]
    assert resent.name.endswith("_resent.csv")
    originals = [p for p in month[:-1] if p.read_bytes() == resent.read_bytes()]
    assert len(originals) == 1
    assert all(p.parent.name == "admissions" for p in month)


def test_file_defects_each_appear(month: list[Path]) -> None:
    raw = {p.name: p.read_bytes() for p in month[:-1]}
    assert sum(data.startswith(b"\xef\xbb\xbf") for data in raw.values()) == 1
    assert sum(b"\r\n" in data for data in raw.values()) == 1
    assert sum(not data.endswith(b"\n") for data in raw.values()) == 1  # the truncated one
    quoted_newlines = sum("\n" in field for p in month[:-1] for row in records(p) for field in row)
    assert quoted_newlines == 1
    for data in raw.values():
        assert data.decode("utf-8-sig").replace("\r\n", "\n").startswith(HEADER + "\n")


def test_clean_variant_has_no_file_defects(tmp_path: Path) -> None:
    files = generate_admissions(
        tmp_path, seed=7, end_date=END, days=5, admissions_per_day=100, file_defects=False
    )
    assert len(files) == 5
    for path in files:
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        assert b"\r" not in data
        assert data.endswith(b"\n")


def test_volumes_and_values_are_plausible(month: list[Path]) -> None:
    rows = [row for p in month[:-1] for row in records(p)]
    assert 30 * 300 * 0.9 < len(rows) < 30 * 300 * 1.1
    departments = Counter(row[4].strip().upper() for row in rows)
    assert set(departments) <= DEPARTMENT_NAMES
    assert departments.most_common(1)[0][0] == "GENERAL_MEDICINE"
    assert {row[5] for row in rows} == {"emergency", "urgent", "elective"}
    assert {row[6] for row in rows} == {"home", "transfer", "died", "other", ""}
    assert {row[9] for row in rows} <= {*INSURERS, ""}
    charges = [float(row[8]) for row in rows]
    assert min(charges) > 0
    assert all(len(row[7]) >= 3 for row in rows)


def test_about_five_percent_dirt(month: list[Path]) -> None:
    rows = [row for p in month[:-1] for row in records(p)]
    duplicates = len(rows) - len({tuple(row) for row in rows})
    messy_departments = sum(row[4] not in DEPARTMENT_NAMES for row in rows)
    malformed = sum(
        parse(row[2]) is None or (row[3] != "" and parse(row[3]) is None) for row in rows
    )
    backwards = 0
    for row in rows:
        admitted, discharged = parse(row[2]), parse(row[3])
        backwards += bool(admitted and discharged and discharged < admitted)
    no_insurer = sum(row[9] == "" for row in rows)
    for count, low, high in [
        (duplicates, 0.003, 0.012),
        (messy_departments, 0.008, 0.025),
        (malformed, 0.002, 0.008),
        (backwards, 0.001, 0.006),
        (no_insurer, 0.03, 0.07),  # dirt plus self-pay patients
    ]:
        assert low * len(rows) <= count <= high * len(rows)


def test_open_stays_have_no_discharge(month: list[Path]) -> None:
    rows = [row for p in month[:-1] for row in records(p)]
    open_stays = [row for row in rows if row[3] == ""]
    assert open_stays
    assert all(row[6] == "" for row in open_stays)
    last_day = Counter(row[2][:10] for row in open_stays)
    # Most stays still open on the last day began in its last week.
    recent = sum(n for day, n in last_day.items() if day >= (END - timedelta(days=7)).isoformat())
    assert recent > 0.6 * len(open_stays)


def test_readmissions_look_like_a_hospitals(tmp_path: Path) -> None:
    files = generate_admissions(
        tmp_path, seed=3, end_date=END, days=120, admissions_per_day=150, file_defects=False
    )
    rows = {row[0]: row for p in files for row in records(p)}  # de-duplicated by admission id
    stays: dict[str, list[tuple[datetime, datetime | None, str, str]]] = defaultdict(list)
    for row in rows.values():
        admitted = parse(row[2])
        discharged = parse(row[3]) if row[3] else None
        if admitted is None or (row[3] and (discharged is None or discharged < admitted)):
            continue  # the dirt: malformed dates, discharge before admission
        stays[row[1]].append((admitted, discharged, row[5], row[6]))
    index = readmitted = 0
    for patient_stays in stays.values():
        patient_stays.sort()
        for (_, discharged, _, disposition), (admitted, _, kind, _) in pairwise(patient_stays):
            if discharged is None or disposition not in {"home", "other"}:
                continue
            index += 1
            gap = (admitted.date() - discharged.date()).days
            readmitted += 0 <= gap <= 30 and kind != "elective"
    assert 0.05 < readmitted / index < 0.2
    # Never two beds at once.
    for patient_stays in stays.values():
        for (_, discharged, _, _), (admitted, _, _, _) in pairwise(patient_stays):
            assert discharged is not None and admitted >= discharged
    assert len(stays) < len(rows)


def test_patients_are_about_a_tenth_of_admissions_over_a_year(tmp_path: Path) -> None:
    files = generate_admissions(
        tmp_path, seed=5, end_date=END, days=365, admissions_per_day=60, file_defects=False
    )
    rows = [row for p in files for row in records(p)]
    patients = {row[1] for row in rows}
    assert 0.07 < len(patients) / len(rows) < 0.2
