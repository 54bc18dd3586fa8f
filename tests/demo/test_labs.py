"""The demo lab results: deterministic FHIR Observations of the admissions, as a real export."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carehouse.demo.labs import LOINC, generate_labs
from carehouse.demo.reference import (
    LAB_TESTS_BY_LOINC,
    UNIT_MISMATCHES,
    hospital_days,
    observations_per_day,
)

END = date(2025, 3, 31)
DAYS = 15
SCALE = 0.2


def generate(folder: Path, *, seed: int = 5, file_defects: bool = True) -> list[Path]:
    return generate_labs(
        folder, seed=seed, end_date=END, days=DAYS, scale=SCALE, file_defects=file_defects
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate(tmp_path_factory.mktemp("landing"))


def read(files: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every Observation of the NDJSON files, and the lines that are not JSON."""
    observations, broken = [], []
    for path in files:
        if path.suffix != ".ndjson":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                observations.append(json.loads(line))
            except ValueError:
                broken.append(line)
    return observations, broken


@pytest.fixture(scope="module")
def observations(files: list[Path]) -> list[dict[str, Any]]:
    return read(files)[0]


def loinc_of(observation: dict[str, Any]) -> str | None:
    codings = observation["code"]["coding"]
    return next((c["code"] for c in codings if c["system"] == LOINC), None)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, files: list[Path]) -> None:
    again = generate(tmp_path / "again")
    assert [p.name for p in again] == [p.name for p in files]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(again, files, strict=True))
    other = generate(tmp_path / "other", seed=6)
    assert [p.read_bytes() for p in other] != [p.read_bytes() for p in files]


def test_one_ndjson_file_a_day_and_one_bundle(files: list[Path]) -> None:
    days = [END - timedelta(days=offset) for offset in range(DAYS - 1, -1, -1)]
    assert [p.name for p in files[:-1]] == [f"labs_{day.isoformat()}.ndjson" for day in days]
    bundle = json.loads(files[-1].read_text(encoding="utf-8"))
    assert files[-1].name.startswith("labs_bundle_") and bundle["resourceType"] == "Bundle"
    kinds = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])
    assert kinds["OperationOutcome"] == 1 and kinds["Observation"] >= 1


def test_volume_follows_the_scale(observations: list[dict[str, Any]]) -> None:
    expected = observations_per_day(SCALE) * DAYS
    assert 0.9 * expected < len(observations) < 1.15 * expected
    assert len({o["id"] for o in observations}) == len(observations)


def test_exactly_one_malformed_line(files: list[Path]) -> None:
    assert len(read(files)[1]) == 1
    clean = generate(files[0].parent.parent / "clean", file_defects=False)
    assert len(read(clean)[1]) == 0 and all(p.suffix == ".ndjson" for p in clean)


def test_results_belong_to_admissions_and_happen_during_the_stay(
    observations: list[dict[str, Any]],
) -> None:
    start = datetime.combine(END - timedelta(days=DAYS - 1), datetime.min.time())
    stays = {
        admission.admission_id: admission
        for day in hospital_days(seed=5, end_date=END, days=DAYS, scale=SCALE)
        for admission in day.admissions
    }
    for observation in observations:
        admission = stays[observation["encounter"]["reference"].removeprefix("Encounter/")]
        assert observation["subject"]["reference"] == f"Patient/P{admission.patient + 1:07d}"
        taken = datetime.fromisoformat(observation["effectiveDateTime"].removesuffix("Z"))
        seconds = (taken - start).total_seconds()
        assert admission.admitted <= seconds <= admission.discharged
        assert observation["issued"] > observation["effectiveDateTime"]


def test_a_real_exports_mix_of_shapes(observations: list[dict[str, Any]]) -> None:
    categories = Counter(o["category"][0]["coding"][0]["code"] for o in observations)
    assert categories["laboratory"] > 0.7 * len(observations)
    assert categories["vital-signs"] > 0 and categories["survey"] > 0
    shapes: Counter[str] = Counter()
    for observation in observations:
        value = next((key for key in observation if key.startswith("value")), None)
        shapes[value or ("component" if "component" in observation else "none")] += 1
    assert set(shapes) == {
        "valueQuantity",
        "valueCodeableConcept",
        "valueString",
        "valueInteger",
        "component",
        "none",
    }
    pressure = next(o for o in observations if "component" in o)
    assert [c["code"]["coding"][0]["code"] for c in pressure["component"]] == ["8480-6", "8462-4"]
    cancelled = [o for o in observations if o["status"] == "cancelled"]
    assert cancelled and all("dataAbsentReason" in o for o in cancelled)


def test_lab_values_units_ranges_and_flags_agree(observations: list[dict[str, Any]]) -> None:
    labs = [o for o in observations if loinc_of(o) in LAB_TESTS_BY_LOINC and "valueQuantity" in o]
    flags: Counter[str] = Counter()
    mismatched = without_range = 0
    for observation in labs:
        test = LAB_TESTS_BY_LOINC[loinc_of(observation) or ""]
        quantity = observation["valueQuantity"]
        unit = quantity["code"]
        if unit != test.unit:
            assert unit == UNIT_MISMATCHES[test.loinc][0]
            mismatched += 1
        flag = observation["interpretation"][0]["coding"][0]["code"]
        flags[flag] += 1
        if "referenceRange" not in observation:
            without_range += 1
            continue
        low = observation["referenceRange"][0]["low"]["value"]
        high = observation["referenceRange"][0]["high"]["value"]
        value = quantity["value"]
        expected = "H" if value > high else "L" if value < low else "N"
        assert flag == expected or (flag in {"HH", "LL"} and expected == flag[0])
    assert 0.7 < flags["N"] / len(labs) < 0.95
    assert flags["H"] > flags["L"] > 0 and flags["HH"] > 0
    assert 0.003 < mismatched / len(labs) < 0.03
    assert 0.01 < without_range / len(labs) < 0.06


def test_unknown_and_local_codes_appear(observations: list[dict[str, Any]]) -> None:
    codes = Counter(loinc_of(o) for o in observations)
    assert codes[None] > 0  # a local code, no LOINC coding
    assert {"99999-9", "12345-0", "LAB-GLU-POC", "0000-0"} & set(codes)
    assert codes["2345-7"] > codes["2524-7"] > 0
