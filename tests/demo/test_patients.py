"""The demo patient master: deterministic, the admissions' patients, changing, and dirty."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from carehouse.demo.admissions import generate_admissions
from carehouse.demo.patients import HEADER, PLANS, generate_patients
from carehouse.demo.reference import admissions_per_day, hospital_days, scale_of

END = date(2025, 3, 31)
DAYS = 20
SCALE = 0.1
FIELDS = HEADER.split(",")


def generate(folder: Path, *, seed: int = 11, file_defects: bool = True) -> list[Path]:
    return generate_patients(
        folder, seed=seed, end_date=END, days=DAYS, scale=SCALE, file_defects=file_defects
    )


def rows(path: Path) -> list[list[str]]:
    """Whole records of a snapshot, without the header (a truncated last record left out)."""
    text = path.read_bytes().decode("utf-8-sig")
    return [row for row in csv.reader(io.StringIO(text, newline=""))][1:]


def snapshot(path: Path) -> dict[str, list[str]]:
    return {row[0]: row for row in rows(path) if len(row) == len(FIELDS)}


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("landing")


@pytest.fixture(scope="module")
def files(landing: Path) -> list[Path]:
    return generate(landing)


@pytest.fixture(scope="module")
def admissions(landing: Path) -> list[list[str]]:
    paths = generate_admissions(
        landing, seed=11, end_date=END, days=DAYS, admissions_per_day=admissions_per_day(SCALE)
    )
    records = []
    for path in paths[:-1]:  # the re-sent copy repeats a day
        text = path.read_bytes().decode("utf-8-sig")
        records += [row for row in csv.reader(io.StringIO(text, newline="")) if len(row) == 10]
    return [row for row in records if row[0] != "admission_id"]


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, files: list[Path]) -> None:
    again = generate(tmp_path / "again")
    assert [p.name for p in again] == [p.name for p in files]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(again, files, strict=True))
    other = generate(tmp_path / "other", seed=12)
    assert [p.read_bytes() for p in other] != [p.read_bytes() for p in files]


def test_one_snapshot_a_day_plus_a_resent_copy(files: list[Path]) -> None:
    days = [END - timedelta(days=offset) for offset in range(DAYS - 1, -1, -1)]
    assert [p.name for p in files[:-1]] == [f"patients_{day.isoformat()}.csv" for day in days]
    resent = files[-1]
    assert resent.name.endswith("_resent.csv") and resent.parent.name == "patients"
    assert sum(p.read_bytes() == resent.read_bytes() for p in files[:-1]) == 1


def test_file_defects_each_appear(files: list[Path]) -> None:
    raw = [p.read_bytes() for p in files[:-1]]
    assert sum(data.startswith(b"\xef\xbb\xbf") for data in raw) == 1
    assert sum(b"\r\n" in data for data in raw) == 1
    assert sum(not data.endswith(b"\n") for data in raw) == 1
    assert sum("\n" in field for p in files[:-1] for row in rows(p) for field in row) == 1
    for data in raw:
        assert data.decode("utf-8-sig").replace("\r\n", "\n").startswith(HEADER + "\n")


def test_the_clean_variant_has_no_file_defects(tmp_path: Path) -> None:
    for path in generate(tmp_path, file_defects=False):
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data
        assert data.endswith(b"\n")


def test_every_admitted_patient_is_registered_by_the_admission_day(
    files: list[Path], admissions: list[list[str]]
) -> None:
    snapshots = {p.name[9:19]: set(snapshot(p)) for p in files[:-1]}
    for row in admissions:
        day = row[2][:10]
        if day in snapshots:  # a malformed admission date names no day
            assert row[1] in snapshots[day], row[0]
    # Patients registered before the window are there from the first day.
    first = min(snapshots)
    assert len(snapshots[first]) >= len({row[1] for row in admissions}) * 0.05


def test_the_master_agrees_with_the_admissions_on_insurers(
    files: list[Path], admissions: list[list[str]]
) -> None:
    snapshots = {p.name[9:19]: snapshot(p) for p in files[:-1]}
    compared = agreed = 0
    for row in admissions:
        master = snapshots.get(row[2][:10], {}).get(row[1])
        if master is None or not row[9]:
            continue
        compared += 1
        agreed += master[7] == row[9]
    assert compared > 1000
    # Disagreement only from dirt: an insurer missing in the master.
    assert agreed / compared > 0.97


def test_the_replayed_simulation_matches_the_admissions_files(
    admissions: list[list[str]],
) -> None:
    replayed = {
        admission.admission_id: f"P{admission.patient + 1:07d}"
        for day in hospital_days(seed=11, end_date=END, days=DAYS, scale=SCALE)
        for admission in day.admissions
    }
    written = {row[0]: row[1] for row in admissions}
    assert set(written) <= set(replayed)
    assert len(written) > 0.99 * len(replayed)  # the truncated record is lost
    assert all(replayed[admission] == patient for admission, patient in written.items())


def test_patients_change_from_day_to_day(files: list[Path]) -> None:
    snapshots = [snapshot(p) for p in files[:-1]]
    changed: Counter[str] = Counter()
    for before, after in pairwise(snapshots):
        for patient, row in after.items():
            old = before.get(patient)
            if old is None or old == row or "\n" in old[5] + row[5]:
                continue  # new, unchanged, or the one address broken over two lines
            for index, name in enumerate(FIELDS):
                if old[index] != row[index]:
                    changed[name] += 1
            assert old[9] < row[9]  # a change moves updated_at on
    assert changed["insurer_id"] > 5
    assert changed["address_line"] > 10 and changed["postal_code"] > 10
    assert changed["plan"] > 10
    assert changed["birth_date"] == changed["given_name"] == 0
    # New patients are registered as they are first admitted.
    sizes = [len(s) for s in snapshots]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_about_five_percent_dirt(files: list[Path]) -> None:
    records = rows(files[-2])
    whole = [row for row in records if len(row) == len(FIELDS)]
    duplicates = len(whole) - len({tuple(row) for row in whole})
    today = END.isoformat()

    def impossible(birth: str) -> bool:
        try:
            born = date.fromisoformat(birth)
        except ValueError:
            return True
        return birth > today or born.year < END.year - 120

    bad_birth = sum(impossible(row[3]) for row in whole)
    odd_sex = sum(row[4] not in {"F", "M"} for row in whole)
    padded = sum(row[1] != row[1].strip() or row[2] != row[2].strip() for row in whole)
    no_insurer = sum(row[7] == "" for row in whole)
    self_pay_plans = sum(row[7] == "" and row[8] == "" for row in whole)
    n = len(whole)
    for count, low, high in [
        (duplicates, 0.001, 0.012),
        (bad_birth, 0.005, 0.02),
        (odd_sex, 0.008, 0.025),
        (padded, 0.008, 0.025),
        (no_insurer, 0.02, 0.08),  # dirt plus self-pay patients
    ]:
        assert low * n <= count <= high * n
    assert self_pay_plans > 0
    assert {row[8] for row in whole} <= {*PLANS, ""}


def test_scale_and_admissions_per_day_convert_both_ways() -> None:
    assert admissions_per_day(1.0) == 2740
    assert all(admissions_per_day(scale_of(n)) == n for n in range(1, 20_000))
