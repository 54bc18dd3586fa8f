"""Labs and vitals into gold, incrementally: reconciliation, NEWS2, abnormal labs, privacy.

Every source of tests/dbt/clinical.py is loaded. The labs and vitals arrive in two steps with
a `dbt build` after each, so the second build runs fct_lab_results and fct_vitals
incrementally: amended results, a result amended into the wrong unit, late and
out-of-order vitals, a set committed minutes "before" the first build (within the lookback)
and a replayed copy that makes a set implausible. A `--full-refresh` over the same data must
then give gold byte for byte, and so must another build.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from carehouse.core.settings import Role, Settings
from carehouse.ingest.labs import load_labs
from carehouse.ingest.patients import load_patients
from carehouse.warehouse.dbt import DbtResult, run_dbt
from tests.support.clinical import (
    ADMISSIONS,
    DIRECT_IDENTIFIERS,
    EXPECTED_LAB_QUARANTINE,
    EXPECTED_LAB_RESULTS,
    EXPECTED_LAB_TRENDS,
    EXPECTED_VITALS,
    EXPECTED_VITALS_QUARANTINE,
    PATIENT_SNAPSHOTS,
    VITALS_FIRST,
    VITALS_SECOND,
    gold_tables,
    insert_vitals,
    observation_set_id,
    table_checksums,
    write_lab_files,
    write_patient_snapshots,
)
from tests.support.warehouse import isolated_warehouse, load_raw_admissions, node_name

pytestmark = pytest.mark.slow

D = Decimal
VITALS_BY_NAME = {vital.name: vital for vital in (*VITALS_FIRST, *VITALS_SECOND)}
INCREMENTAL_FACTS = {"fct_vitals", "fct_lab_results", "pipeline_run_audit"}
IDENTIFIER_COLUMNS = {
    "patient_id", "given_name", "family_name", "birth_date", "address_line", "postal_code",
    "patient_ref", "subject",
}  # fmt: skip


class Builds:
    """The module's builds and the gold checksums taken between them."""

    def __init__(self) -> None:
        self.results: dict[str, DbtResult] = {}
        self.checksums: dict[str, dict[str, str]] = {}
        # Per build: the incremental facts whose executed SQL deleted and re-inserted rows
        # (the incremental path) rather than creating the table.
        self.merged: dict[str, set[str]] = {}

    def record(self, name: str, settings: Settings, result: DbtResult) -> None:
        """Keep a build's result, gold checksums and which facts ran incrementally."""
        self.results[name] = result
        self.checksums[name] = table_checksums(settings, gold_tables(settings))
        run_dir = result.target_path / "run" / "carehouse" / "models" / "marts"
        self.merged[name] = {
            path.stem
            for path in run_dir.rglob("*.sql")
            if path.stem in INCREMENTAL_FACTS and "delete from" in path.read_text().lower()
        }


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    """A database for the whole hospital."""
    with isolated_warehouse(settings, "marts") as isolated:
        yield isolated


@pytest.fixture(scope="module")
def builds(warehouse: Settings, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    """First batch and build, second batch and incremental build, full refresh, rebuild."""
    folder: Path = tmp_path_factory.mktemp("hospital")
    done = Builds()
    load_patients(warehouse, write_patient_snapshots(folder / "patients", list(PATIENT_SNAPSHOTS)))
    load_raw_admissions(warehouse, ADMISSIONS)
    load_labs(warehouse, write_lab_files(folder / "labs-1", ["labs_2026-03-06.ndjson"]))
    insert_vitals(warehouse, VITALS_FIRST, "batch-1")
    done.record("first", warehouse, run_dbt(warehouse, ["build"]))

    load_labs(warehouse, write_lab_files(folder / "labs-2", ["labs_2026-03-10.ndjson"]))
    insert_vitals(warehouse, VITALS_SECOND, "batch-2")
    done.record("incremental", warehouse, run_dbt(warehouse, ["build"]))
    done.record("full_refresh", warehouse, run_dbt(warehouse, ["build", "--full-refresh"]))
    done.record("again", warehouse, run_dbt(warehouse, ["build"]))
    return done


def rows(
    settings: Settings, statement: str, params: tuple[object, ...] = (), role: Role = "bi"
) -> list[tuple[object, ...]]:
    """Rows of a query (as BI by default, session TimeZone UTC), dates and times as ISO text."""
    with psycopg.connect(settings.dsn(role)) as conn:
        conn.execute("set timezone to 'UTC'")
        return [
            tuple(value.isoformat() if hasattr(value, "isoformat") else value for value in row)
            for row in conn.execute(statement, params).fetchall()
        ]


def mapping(found: list[tuple[object, ...]]) -> dict[object, object]:
    """Two-column rows as a dict."""
    return {row[0]: row[1] for row in found}


def test_every_build_passes_with_its_unit_tests(builds: Builds) -> None:
    for name, result in builds.results.items():
        assert result.success, name
    statuses = {node_name(node.unique_id): node.status for node in builds.results["again"].nodes}
    for name in (
        "test_lab_abnormal_by_range_and_interpretation",
        "test_vitals_news2_columns_and_band_edges",
        "test_news2_bands_and_alerts",
        "assert_labs_staged_plus_quarantined_equal_raw",
        "assert_vitals_staged_plus_quarantined_equal_raw",
        "assert_patients_staged_plus_quarantined_equal_raw",
    ):
        assert statuses[name] == "pass", name
    # The second build ran the facts incrementally (delete+insert), the full refresh did not.
    assert builds.merged["first"] == set()
    assert builds.merged["incremental"] == INCREMENTAL_FACTS
    assert builds.merged["full_refresh"] == set()


def test_incremental_builds_equal_a_full_refresh_and_a_rebuild(builds: Builds) -> None:
    assert builds.checksums["incremental"] != builds.checksums["first"]
    assert builds.checksums["full_refresh"] == builds.checksums["incremental"]
    assert builds.checksums["again"] == builds.checksums["full_refresh"]
    assert {
        "gold.fct_lab_results", "gold.fct_vitals", "gold.news2_alerts", "gold.dim_patient",
        "gold.patient_clinical_summary", "gold.pipeline_run_audit",
        "gold.revenue_by_insurer_quarterly", "gold.lab_abnormal_trends_weekly",
        "gold.patient_vitals_hourly",
    } <= set(builds.checksums["again"])  # fmt: skip


def test_every_lab_observation_is_staged_or_quarantined(
    warehouse: Settings, builds: Builds
) -> None:
    quarantined = mapping(
        rows(
            warehouse,
            "select observation_id, reason from quarantine.labs_rejected",
            role="transformer",
        )
    )
    staged = {
        row[0]
        for row in rows(
            warehouse,
            "select observation_id from staging.stg_labs__observations",
            role="transformer",
        )
    }
    raw = rows(
        warehouse,
        "select count(distinct observation_id) from raw_labs.observations",
        role="transformer",
    )
    assert quarantined == EXPECTED_LAB_QUARANTINE
    assert staged == set(EXPECTED_LAB_RESULTS)
    assert raw == [(len(staged) + len(quarantined),)]


def test_lab_results_are_flagged_from_range_and_interpretation(
    warehouse: Settings, builds: Builds
) -> None:
    results = {
        row[0]: row[1:]
        for row in rows(
            warehouse,
            "select observation_id, reference_low, reference_high, reference_range_source,"
            " is_abnormal from gold.fct_lab_results",
        )
    }
    assert results == EXPECTED_LAB_RESULTS
    # The amendment replaced the first version: 95 and status amended.
    assert rows(
        warehouse,
        "select value, unit, status from gold.fct_lab_results where observation_id = 'obs-2'",
    ) == [(D("95"), "mg/dL", "amended")]
    assert (
        rows(
            warehouse,
            "select iso_week_start_date, loinc_code, results, abnormal_results, abnormal_rate_pct"
            " from gold.lab_abnormal_trends_weekly order by 1, 2",
        )
        == EXPECTED_LAB_TRENDS
    )


def test_every_vitals_set_is_staged_or_quarantined(warehouse: Settings, builds: Builds) -> None:
    quarantined = mapping(
        rows(
            warehouse,
            "select observation_set_id, implausible_parameters from quarantine.vitals_rejected",
            role="transformer",
        )
    )
    assert quarantined == {
        observation_set_id(VITALS_BY_NAME[name]): parameters
        for name, parameters in EXPECTED_VITALS_QUARANTINE.items()
    }
    staged = rows(warehouse, "select count(*) from staging.stg_vitals__vitals", role="transformer")
    raw_sets = rows(
        warehouse,
        "select count(distinct (device_id, observed_at)) from raw_vitals.vitals",
        role="transformer",
    )
    assert staged == [(len(EXPECTED_VITALS),)]
    assert raw_sets == [(len(EXPECTED_VITALS) + len(quarantined),)]
    # Of v1 and its retry, the lower offset (v1, heart rate 70) is kept.
    v1 = observation_set_id(VITALS_BY_NAME["v1"])
    assert rows(
        warehouse, "select heart_rate from gold.fct_vitals where observation_set_id = %s", (v1,)
    ) == [(D("70"),)]


def test_vitals_carry_news2_and_alerts_list_newest_first(
    warehouse: Settings, builds: Builds
) -> None:
    scored = {
        row[0]: row[1:]
        for row in rows(
            warehouse,
            "select observation_set_id, news2_score, news2_band, is_alert from gold.fct_vitals",
        )
    }
    assert scored == {
        observation_set_id(VITALS_BY_NAME[name]): expected
        for name, expected in EXPECTED_VITALS.items()
    }
    alerts = rows(
        warehouse, "select observation_set_id, news2_band, alert_reason from gold.news2_alerts"
    )
    assert alerts == [
        (observation_set_id(VITALS_BY_NAME["v9"]), "low_medium", "single_parameter"),
        (observation_set_id(VITALS_BY_NAME["v6"]), "high", "aggregate_score"),
        (observation_set_id(VITALS_BY_NAME["v3"]), "medium", "aggregate_score"),
        (observation_set_id(VITALS_BY_NAME["v5"]), "medium", "aggregate_score"),
        (observation_set_id(VITALS_BY_NAME["v2"]), "low_medium", "single_parameter"),
    ]
    # v5's parameter scores: SpO2 97 on scale 2 on oxygen scores 3, oxygen 2.
    assert rows(
        warehouse,
        "select respiration_score, spo2_score, oxygen_score, systolic_score, pulse_score,"
        " consciousness_score, temperature_score from gold.news2_alerts"
        " where observation_set_id = %s",
        (observation_set_id(VITALS_BY_NAME["v5"]),),
    ) == [(0, 3, 2, 0, 0, 0, 0)]


def test_patient_vitals_hourly(warehouse: Settings, builds: Builds) -> None:
    hours = rows(
        warehouse,
        "select hour_start_at, observation_sets, min_heart_rate, avg_heart_rate, max_heart_rate,"
        " max_news2_score, alerting_observation_sets from gold.patient_vitals_hourly"
        " order by hour_start_at, max_news2_score",
    )
    assert hours == [
        # MON-C's 09:00 set was replaced by an implausible replay: only v9 (09:30) is left.
        ("2026-03-02T10:00:00+00:00", 3, D("70"), D("75.00"), D("80"), 3, 1),  # v1, v2, v8
        ("2026-03-02T10:00:00+00:00", 1, D("70"), D("70.00"), D("70"), 5, 1),  # v5 (v4 out)
        ("2026-03-02T11:00:00+00:00", 1, D("111"), D("111.00"), D("111"), 5, 1),  # v3
        ("2026-03-02T12:00:00+00:00", 1, D("111"), D("111.00"), D("111"), 7, 1),  # v6
        ("2026-03-03T09:00:00+00:00", 1, D("70"), D("70.00"), D("70"), 3, 1),  # v9
    ]


def test_patient_clinical_summary(warehouse: Settings, builds: Builds) -> None:
    summary = rows(
        warehouse,
        "select sex, age_band, insurer_id, plan, postal_area, is_listed_in_master, admissions,"
        " last_admission_date, last_discharge_date, total_los_days, readmissions_30d,"
        " lab_results_90d, abnormal_lab_results_90d, latest_news2_score, latest_news2_band,"
        " as_of_date from gold.patient_clinical_summary order by sex nulls last, age_band",
    )
    assert summary == [
        # Wilhelmina: the Dec 20 sodium is outside the 90 days ending Apr 2; latest set v6.
        ("F", "40-49", "INS_C", "STANDARD", "EF5", True, 1, "2026-03-01", "2026-03-02", 1, 0, 1,
         0, 7, "high", "2026-04-02"),
        # Zelda: H0 (LOS 2) readmitted by H1 the next day, H1 (LOS 0) by H2 (LOS 30); labs
        # obs-2, obs-3 (abnormal), obs-12; latest set v3.
        ("F", "60-69", "INS_B", "PREMIUM", "AB1", True, 3, "2026-03-03", "2026-04-02", 32, 2, 3,
         1, 5, "medium", "2026-04-02"),
        # Tobias: 25 on Apr 2, still in hospital; one abnormal glucose (obs-15); latest set v9.
        ("M", "20-29", "INS_B", "BASIC", "IJ9", True, 1, "2026-03-04", None, 0, 0, 1, 1, 3,
         "low_medium", "2026-04-02"),
        # Ulrich: dropped from the master (current version deleted), nothing else.
        ("M", "50-59", "INS_C", "STANDARD", "GH7", False, 0, None, None, 0, 0, 0, 0, None, None,
         "2026-04-02"),
        # Yorick: 96, so 90+; his labs were all quarantined.
        ("M", "90+", "INS_B", "PREMIUM", "ZX9", True, 1, "2026-03-03", "2026-03-04", 1, 0, 0, 0,
         None, None, "2026-04-02"),
        # MRN-9999: admissions only, unknown to the master.
        (None, None, None, None, None, False, 1, "2026-03-05", "2026-03-06", 1, 0, 0, 0, None,
         None, "2026-04-02"),
    ]  # fmt: skip


def test_bi_reads_every_gold_table_and_nothing_else(warehouse: Settings, builds: Builds) -> None:
    with psycopg.connect(warehouse.dsn("bi")) as conn:
        for _, table in gold_tables(warehouse):
            conn.execute(sql.SQL("select count(*) from gold.{}").format(sql.Identifier(table)))
    for schema, table in (
        ("silver", "int_patients_history"),
        ("staging", "stg_patients__patients"),
        ("snapshots", "patients_snapshot"),
        ("quarantine", "labs_rejected"),
        ("raw_vitals", "vitals"),
    ):
        with (
            psycopg.connect(warehouse.dsn("bi")) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(sql.SQL("select 1 from {} limit 1").format(sql.Identifier(schema, table)))


def test_no_direct_identifiers_in_gold(warehouse: Settings, builds: Builds) -> None:
    tables = gold_tables(warehouse)
    with psycopg.connect(warehouse.dsn("bi")) as conn:
        columns = conn.execute(
            "select table_name, column_name from information_schema.columns"
            " where table_schema = 'gold'"
        ).fetchall()
        assert [row for row in columns if row[1] in IDENTIFIER_COLUMNS] == []
        for _, table in tables:
            for value in DIRECT_IDENTIFIERS:
                found = conn.execute(
                    sql.SQL("select count(*) from gold.{} as t where t::text ilike %s").format(
                        sql.Identifier(table)
                    ),
                    (f"%{value}%",),
                ).fetchone()
                assert found == (0,), (table, value)


def test_pipeline_run_audit_keeps_the_final_state_of_each_run(
    warehouse: Settings, builds: Builds
) -> None:
    """The orchestrator records a run at its start and again at its end: one row, final."""
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        conn.execute(
            "insert into audit.pipeline_runs (run_id, business_date, started_at, status)"
            " values ('run-1', '2026-04-02', '2026-04-03T01:00:00Z', 'running')"
        )
    run_dbt(warehouse, ["build", "--select", "stg_audit__pipeline_runs", "pipeline_run_audit"])
    assert rows(warehouse, "select run_id, status from gold.pipeline_run_audit") == [
        ("run-1", "running")
    ]
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        conn.execute(
            "update audit.pipeline_runs set status = 'succeeded',"
            " finished_at = '2026-04-03T01:02:30Z', recorded_at = now(),"
            " source_rows = %s, gate_outcomes = %s, step_durations = %s"
            " where run_id = 'run-1'",
            (
                '{"labs": {"received": 17, "loaded": 15, "quarantined": 2}}',
                '{"staging": "passed", "silver": "passed", "gold": "passed"}',
                '{"dbt_build": 42.5}',
            ),
        )
    run_dbt(warehouse, ["build", "--select", "stg_audit__pipeline_runs", "pipeline_run_audit"])
    assert rows(
        warehouse,
        "select run_id, status, duration_seconds, labs_rows_received, labs_rows_loaded,"
        " labs_rows_quarantined, admissions_rows_received, gold_gate_outcome,"
        " is_every_gate_passed from gold.pipeline_run_audit",
    ) == [("run-1", "succeeded", D("150.000"), 17, 15, 2, None, "passed", True)]
