"""The silver gate: referential integrity against the patient history, SCD2 and episode rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from carehouse.core.settings import Settings
from carehouse.ingest.patients import load_patients
from carehouse.quality.gates import GateResult, verify_layer
from carehouse.warehouse.dbt import run_dbt
from tests.support.warehouse import BuiltTemplate, cloned_warehouse

pytestmark = pytest.mark.slow

CONTIGUOUS = "Versions of a patient are contiguous (each ends where the next starts)"
REFERENTIAL = "Admissions of patients the patient history does not know (percent)"
# The patient master of the hand-checked admissions (P1..P4), a snapshot before them all.
PATIENTS_CSV = "\n".join(
    [
        "patient_id,given_name,family_name,birth_date,sex,address_line,postal_code,insurer_id,"
        "plan,updated_at",
        "P1,Hildegard,Vandermeer,1941-07-02,F,12 Station Road,12345,INS1,BASIC,2025-12-01T10:00:00",
        "P2,Osvaldo,Quennell,1978-11-23,M,3 Mill Lane,54321,INS2,PREMIUM,2025-12-01T10:00:00",
        "P3,Ines,Okonkwo,1950-02-14,F,7 High Street,11111,INS3,STANDARD,2025-12-01T10:00:00",
        "P4,Tomas,Lindqvist,1933-05-30,M,1 Quay Road,22222,,,2025-12-01T10:00:00",
    ]
)


@pytest.fixture(scope="module")
def warehouse(settings: Settings, admissions_built: BuiltTemplate) -> Iterator[Settings]:
    """The hand-checked admissions built through dbt, without any patient master yet."""
    with cloned_warehouse(settings, admissions_built.database, "silver") as isolated:
        yield isolated


def failing(result: GateResult) -> list[tuple[str, str]]:
    return [(Path(c.contract).stem, c.check) for c in result.failed_checks]


def test_admissions_without_a_patient_master_fail_the_silver_gate(warehouse: Settings) -> None:
    result = verify_layer(warehouse, "silver", "run-silver-orphans")

    assert failing(result) == [("int_admissions_episodes_merged", REFERENTIAL)]
    (orphans,) = result.failed_checks
    assert orphans.measured_value == 100
    assert orphans.diagnostics["invalid_count"] == 7
    # Silver rows are about patients and encounters: counts, never keys.
    assert orphans.sample_keys == ()
    assert result.report_json is not None and result.report_markdown is not None
    text = result.report_json.read_text() + result.report_markdown.read_text()
    for value in ("CARDIOLOGY", "P1", "A1", "B2"):
        assert value not in text


def test_with_the_patient_master_loaded_the_silver_gate_passes(
    warehouse: Settings, tmp_path: Path
) -> None:
    snapshot = tmp_path / "patients_2025-12-31.csv"
    snapshot.write_text(PATIENTS_CSV + "\n", encoding="utf-8")
    assert load_patients(warehouse, snapshot).loaded == 4
    run_dbt(warehouse, ["build"])

    result = verify_layer(warehouse, "silver", "run-silver")

    assert result.passed, (failing(result), result.errors)
    assert result.warned_checks == ()
    stems = {Path(contract).stem for contract in result.contracts}
    assert stems == {
        "base_labs__observations",
        "base_vitals__vitals",
        "int_admissions_episodes_merged",
        "int_admissions_insurers_attributed",
        "int_admissions_readmissions_flagged",
        "int_patients_history",
        "patients_snapshot",
    }
    text = (result.report_json or Path()).read_text()
    for value in ("Hildegard", "Vandermeer", "Station Road", "1941-07-02"):
        assert value not in text


def test_two_current_versions_of_a_patient_fail_the_scd2_checks(warehouse: Settings) -> None:
    duplicate_current = (
        "insert into silver.int_patients_history select * from silver.int_patients_history"
        " where patient_id = 'P2'"
    )
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        conn.execute(duplicate_current)
    try:
        result = verify_layer(warehouse, "silver", "run-silver-scd2")
    finally:
        with psycopg.connect(warehouse.dsn("transformer")) as conn:
            conn.execute(
                "delete from silver.int_patients_history where ctid = ("
                " select max(ctid) from silver.int_patients_history where patient_id = 'P2')"
            )

    assert failing(result) == [
        ("int_patients_history", "One version per patient and start date"),
        ("int_patients_history", "One current version per patient"),
        ("int_patients_history", CONTIGUOUS),
    ]
    assert all(check.measured_value == 1 for check in result.failed_checks)


def test_an_episode_without_its_last_stay_fails_the_gate(warehouse: Settings) -> None:
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        conn.execute(
            "update silver.int_admissions_episodes_merged set is_episode_last_stay = false"
            " where admission_id = 'C1'"
        )
    try:
        result = verify_layer(warehouse, "silver", "run-silver-episode")
    finally:
        with psycopg.connect(warehouse.dsn("transformer")) as conn:
            conn.execute(
                "update silver.int_admissions_episodes_merged set is_episode_last_stay = true"
                " where admission_id = 'C1'"
            )

    assert failing(result) == [
        ("int_admissions_episodes_merged", "Every episode has exactly one last stay")
    ]
