"""Patient master to SCD2 history: staging, quarantine, history by snapshot date, point-in-time.

The snapshots (tests/dbt/clinical.py) go through the real loader in two steps, March 1-2 then
March 3-4, with a `dbt build` after each; the history must be the one computed from the
snapshot dates, exactly as when all four days are loaded at once, whatever the session
TimeZone dbt runs under.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from carehouse.core.settings import Role, Settings
from carehouse.ingest.patients import load_patients
from carehouse.warehouse.dbt import DbtResult, run_dbt
from tests.support.clinical import (
    ADMISSIONS,
    EXPECTED_HISTORY,
    EXPECTED_INSURERS,
    EXPECTED_PATIENT_QUARANTINE,
    EXPECTED_REVENUE,
    PATIENT_RECORDS,
    gold_tables,
    load_all_at_once,
    table_checksums,
    write_patient_snapshots,
)
from tests.support.warehouse import isolated_warehouse, load_raw_admissions, node_name

pytestmark = pytest.mark.slow

TIMEZONES = ("UTC", "America/New_York", "Asia/Kolkata")
# Instants of loading differ between databases; everything else must not.
INGESTION_COLUMNS = frozenset({"ingested_at", "recorded_at"})


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    """A database for the day-by-day patient master."""
    with isolated_warehouse(settings, "history") as isolated:
        yield isolated


@pytest.fixture(scope="module")
def builds(warehouse: Settings, tmp_path_factory: pytest.TempPathFactory) -> list[DbtResult]:
    """March 1-2 loaded and built, then March 3-4 loaded and built."""
    folder = tmp_path_factory.mktemp("patients")
    load_raw_admissions(warehouse, ADMISSIONS)
    first_days, second_days = ["2026-03-01", "2026-03-02"], ["2026-03-03", "2026-03-04"]
    load_patients(warehouse, write_patient_snapshots(folder / "first", first_days))
    first = run_dbt(warehouse, ["build"])
    load_patients(warehouse, write_patient_snapshots(folder / "second", second_days))
    second = run_dbt(warehouse, ["build"])
    return [first, second]


def rows(
    settings: Settings, statement: str, role: Role = "transformer"
) -> list[tuple[object, ...]]:
    """Rows of a query (session TimeZone UTC), dates and times as ISO text."""
    with psycopg.connect(settings.dsn(role)) as conn:
        conn.execute("set timezone to 'UTC'")
        return [
            tuple(value.isoformat() if hasattr(value, "isoformat") else value for value in row)
            for row in conn.execute(statement).fetchall()
        ]


def test_builds_pass_with_the_scd2_unit_and_data_tests(builds: list[DbtResult]) -> None:
    for build in builds:
        assert build.success
    statuses = {node_name(node.unique_id): node.status for node in builds[-1].nodes}
    for name in (
        "test_patient_history_change_no_change_deletion",
        "test_insurer_at_admission_is_point_in_time",
        "test_revenue_by_discharge_quarter_and_admission_payer",
        "assert_patients_staged_plus_quarantined_equal_raw",
    ):
        assert statuses[name] == "pass", name
    scd2_tests = {
        node.unique_id: node.status
        for node in builds[-1].nodes
        if "exactly_one_current_row" in node.unique_id or "contiguous_validity" in node.unique_id
    }
    assert len(scd2_tests) == 6  # history, dim_patient and the snapshot, two tests each
    assert set(scd2_tests.values()) == {"pass"}


def test_every_distinct_patient_record_is_staged_or_quarantined(
    warehouse: Settings, builds: list[DbtResult]
) -> None:
    staged = int(str(rows(warehouse, "select count(*) from staging.stg_patients__patients")[0][0]))
    quarantined = {
        (row[0], row[1]): row[2]
        for row in rows(
            warehouse, "select patient_id, snapshot_date, reason from quarantine.patients_rejected"
        )
    }
    assert quarantined == EXPECTED_PATIENT_QUARANTINE
    assert staged + len(quarantined) == PATIENT_RECORDS
    # Cleaning: sex standardised, blank insurer SELF_PAY, the duplicated row once.
    assert rows(
        warehouse,
        "select patient_id, sex, insurer_id, plan from staging.stg_patients__patients"
        " where snapshot_date = '2026-03-01' order by 1",
    ) == [
        ("MRN-1001", "F", "INS_A", "BASIC"),
        ("MRN-1002", "M", "INS_B", "PREMIUM"),
        ("MRN-1004", "F", "SELF_PAY", None),
        ("MRN-1007", "M", "INS_C", "STANDARD"),
    ]


def test_history_follows_snapshot_dates_with_deletions(
    warehouse: Settings, builds: list[DbtResult]
) -> None:
    history: dict[str, list[tuple[object, ...]]] = {}
    for patient_id, *version in rows(
        warehouse,
        "select patient_id, valid_from, valid_to, is_deleted, insurer_id"
        " from silver.int_patients_history order by patient_id, valid_from",
    ):
        history.setdefault(str(patient_id), []).append(tuple(version))
    assert history == EXPECTED_HISTORY
    # The quoted line break in Tobias's address on Mar 2 is not a change on Mar 3.
    assert rows(
        warehouse,
        "select address_line from silver.int_patients_history where patient_id = 'MRN-1006'",
    ) == [("Flat 2, 3 Park Avenue",)]


def test_dim_patient_is_the_history_without_identifiers(
    warehouse: Settings, builds: list[DbtResult]
) -> None:
    dim = rows(
        warehouse,
        "select version_number, valid_from, valid_to, is_current, is_deleted, sex, age_band,"
        " insurer_id, plan, postal_area from gold.dim_patient order by patient_key, valid_from",
        role="bi",
    )
    assert len(dim) == sum(len(versions) for versions in EXPECTED_HISTORY.values())
    assert sum(1 for row in dim if row[3]) == len(EXPECTED_HISTORY)  # one current row each
    # Zelda: 64 on Mar 1 and Mar 3; Yorick: 96, so 90+; postal codes cut to 3 characters.
    assert {row[6] for row in dim} == {"60-69", "90+", "40-49", "20-29", "50-59"}
    assert {row[9] for row in dim} == {"AB1", "ZX9", "EF5", "IJ9", "GH7"}
    with psycopg.connect(warehouse.dsn("bi")) as conn:
        columns = {
            row[0]
            for row in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'gold' and table_name = 'dim_patient'"
            ).fetchall()
        }
    assert not columns & {"patient_id", "given_name", "family_name", "birth_date",
                          "address_line", "postal_code"}  # fmt: skip


def test_the_admission_insurer_is_the_one_at_admission(
    warehouse: Settings, builds: list[DbtResult]
) -> None:
    insurers = {
        row[0]: (row[1], row[2])
        for row in rows(
            warehouse,
            "select admission_id, insurer_id_at_admission, insurer_source from gold.fct_admissions",
            role="bi",
        )
    }
    assert insurers == EXPECTED_INSURERS
    assert (
        rows(
            warehouse,
            "select discharge_quarter, quarter_label, insurer_id, discharged_admissions,"
            " charged_admissions, total_charges from gold.revenue_by_insurer_quarterly"
            " order by 1, 3",
            role="bi",
        )
        == EXPECTED_REVENUE
    )


def test_the_dbt_snapshot_keeps_the_audit_trail_of_each_run(
    warehouse: Settings, builds: list[DbtResult]
) -> None:
    records = rows(
        warehouse,
        "select patient_id, insurer_id, dbt_is_deleted, dbt_valid_to = '9999-12-31'::timestamp"
        " from snapshots.patients_snapshot order by patient_id, dbt_valid_from, dbt_is_deleted",
    )
    # Run 1 saw Mar 1-2, run 2 Mar 3-4: Zelda's change and Ulrich's deletion are new records;
    # Yorick's one-day absence on Mar 3 fell between runs and is not (the history has it).
    assert records == [
        ("MRN-1001", "INS_A", "False", False),
        ("MRN-1001", "INS_B", "False", True),
        ("MRN-1002", "INS_B", "False", True),
        ("MRN-1004", "INS_C", "False", True),
        ("MRN-1006", "INS_B", "False", True),
        ("MRN-1007", "INS_C", "False", False),
        ("MRN-1007", "INS_C", "True", True),
    ]


def test_history_and_gold_are_the_same_under_every_session_timezone(
    warehouse: Settings,
    builds: list[DbtResult],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """All sources loaded at once in fresh databases, built under three session TimeZones."""
    results = {}
    for timezone in TIMEZONES:
        with isolated_warehouse(settings, "tz") as fresh:
            load_all_at_once(fresh, tmp_path / timezone.replace("/", "_"))
            # libpq reads PGTZ: dbt's sessions run under it (only dbt's: set around the run).
            with monkeypatch.context() as patched:
                patched.setenv("PGTZ", timezone)
                assert run_dbt(fresh, ["build"]).success
                with psycopg.connect(fresh.dsn("transformer")) as conn:
                    seen = conn.execute("show timezone").fetchone()
            assert seen == (timezone,)
            tables = [("silver", "int_patients_history"), *gold_tables(fresh)]
            results[timezone] = table_checksums(fresh, tables, INGESTION_COLUMNS)
    assert results["America/New_York"] == results["UTC"]
    assert results["Asia/Kolkata"] == results["UTC"]
    assert {"gold.fct_vitals", "gold.patient_vitals_hourly", "gold.dim_patient"} <= set(
        results["UTC"]
    )
    # Loading the snapshots two days at a time gives the history of loading them at once.
    stepwise = table_checksums(warehouse, [("silver", "int_patients_history")])
    assert stepwise["silver.int_patients_history"] == results["UTC"]["silver.int_patients_history"]
