"""The admissions slice end to end: raw CSV text in, quarantine and gold LOS mart out."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from carehouse.core.settings import Settings
from carehouse.warehouse.dbt import DbtError, DbtResult, run_dbt
from tests.support.warehouse import (
    EXPECTED_GOLD,
    EXPECTED_QUARANTINE,
    EXPECTED_STAGED,
    BuiltTemplate,
    RawAdmission,
    cloned_warehouse,
    fetch_gold,
    load_raw_admissions,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def warehouse(settings: Settings, admissions_built: BuiltTemplate) -> Iterator[Settings]:
    """A database holding the hand-checked raw admissions, built (a copy of the template)."""
    with cloned_warehouse(settings, admissions_built.database, "dbt") as isolated:
        yield isolated


@pytest.fixture(scope="module")
def build(admissions_built: BuiltTemplate) -> DbtResult:
    """The one full `dbt build` of the project that built this warehouse's template."""
    return admissions_built.build


def test_gold_avg_los_by_department_matches_hand_computed_numbers(
    warehouse: Settings, build: DbtResult
) -> None:
    assert build.success
    assert fetch_gold(warehouse) == EXPECTED_GOLD


def test_every_distinct_raw_admission_is_staged_or_quarantined(
    warehouse: Settings, build: DbtResult
) -> None:
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        staged = {
            row[0]
            for row in conn.execute("select admission_id from staging.stg_admissions__admissions")
        }
        # A record without an id is named by its file and line (as its lineage reads).
        quarantined: dict[str, str] = dict(
            conn.execute(
                "select coalesce(admission_id, 'row:' || source_file_name || ':'"
                " || source_line_number), reason from quarantine.admissions_rejected"
            ).fetchall()
        )
        # Its record_key is the raw row's own key: its file's ledger id and its line.
        keys = conn.execute(
            "select rejected.record_key, 'row:' || files.file_id || ':11'"
            " from quarantine.admissions_rejected as rejected"
            " join raw_admissions._carehouse_files as files"
            " on files.file_name = rejected.source_file_name"
            " and files.content_sha256 = rejected.source_file_hash"
            " where rejected.admission_id is null"
        ).fetchall()
        a1 = conn.execute(
            "select discharge_date::text, total_charges::text, insurer_id, department"
            " from staging.stg_admissions__admissions where admission_id = 'A1'"
        ).fetchone()
        self_pay = conn.execute(
            "select count(*) from staging.stg_admissions__admissions where insurer_id = 'SELF_PAY'"
        ).fetchone()
    assert staged == EXPECTED_STAGED
    assert quarantined == EXPECTED_QUARANTINE
    assert len(keys) == 1 and keys[0][0] == keys[0][1]
    # The re-sent, corrected A1 wins over the earlier version.
    assert a1 == ("2026-01-06", "1200.50", "INS1", "CARDIOLOGY")
    # A2 (null), A3 (blank) and D1 (null) had no insurer.
    assert self_pay == (3,)


def test_build_runs_unit_tests_and_the_reconciliation_test(build: DbtResult) -> None:
    statuses = {node.unique_id: node.status for node in build.nodes}
    unit_tests = {uid: status for uid, status in statuses.items() if uid.startswith("unit_test.")}
    assert {uid.rsplit(".", 1)[-1] for uid in unit_tests} >= {
        "test_length_of_stay_counts_calendar_days_same_day_is_zero",
        "test_readmission_window_elective_died_and_day_31_excluded",
        "test_rolling_average_uses_calendar_months_not_rows",
    }
    assert set(unit_tests.values()) == {"pass"}
    reconciliation = [uid for uid in statuses if "assert_admissions_staged_plus" in uid]
    assert [statuses[uid] for uid in reconciliation] == ["pass"]


def test_gold_is_readable_by_bi_only_through_gold(warehouse: Settings, build: DbtResult) -> None:
    with psycopg.connect(warehouse.dsn("bi")) as conn:
        assert conn.execute("select count(*) from gold.avg_los_by_department").fetchone() == (5,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(*) from staging.stg_admissions__admissions")


def test_build_result_is_independent_of_the_session_timezone(
    warehouse: Settings, build: DbtResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libpq sets the session TimeZone from PGTZ; dbt's connections inherit it.
    monkeypatch.setenv("PGTZ", "Pacific/Kiritimati")
    run_dbt(warehouse, ["build", "--select", "+avg_los_by_department"])
    assert fetch_gold(warehouse) == EXPECTED_GOLD


def test_naive_times_are_read_in_the_hospital_timezone(
    warehouse: Settings, build: DbtResult
) -> None:
    new_york = warehouse.model_copy(update={"hospital_timezone": "America/New_York"})
    try:
        run_dbt(new_york, ["build", "--select", "stg_admissions__admissions"])
        with psycopg.connect(warehouse.dsn("transformer")) as conn:
            conn.execute("set time zone 'UTC'")
            rows: dict[str, str] = dict(
                conn.execute(
                    "select admission_id, admitted_at::text || ' ' || admission_date::text"
                    " from staging.stg_admissions__admissions"
                    " where admission_id in ('A1', 'A3', 'B1', 'D1')"
                ).fetchall()
            )
    finally:
        run_dbt(warehouse, ["build", "--select", "stg_admissions__admissions"])
    assert rows == {
        "A1": "2026-01-02 13:00:00+00 2026-01-02",  # EST, UTC-5
        "A3": "2026-03-08 14:00:00+00 2026-03-08",  # EDT from 8 March 2026, UTC-4
        "B1": "2026-01-11 03:00:00+00 2026-01-10",  # the local date, not the UTC one
        "D1": "2026-02-28 23:30:00+00 2026-02-28",  # an explicit offset wins
    }


def test_failing_dbt_test_raises_naming_the_failed_node(
    warehouse: Settings, build: DbtResult
) -> None:
    # Two raw rows for one file and line break the source's uniqueness test.
    duplicate = RawAdmission("Z1", "P9", "2026-02-01T10:00:00", None, "ICU", "emergency", None,
                             None, None, None, source_file="admissions_2026-03-20.csv",
                             source_line=1)  # fmt: skip
    load_raw_admissions(warehouse, [duplicate])
    try:
        with pytest.raises(DbtError) as raised:
            # Cautious: the source's own tests, not those that also read staging (its tables
            # were built before this row arrived).
            run_dbt(
                warehouse,
                ["test", "--select", "source:raw_admissions", "--indirect-selection", "cautious"],
            )
    finally:
        with psycopg.connect(warehouse.dsn("loader")) as conn:
            conn.execute("delete from raw_admissions.admissions where admission_id = 'Z1'")
    assert "raw_admissions_one_row_per_file_line" in str(raised.value)
    assert [node.status for node in raised.value.result.failed_nodes] == ["fail"]


def test_dbt_writes_nothing_into_the_repository(warehouse: Settings, build: DbtResult) -> None:
    assert build.target_path.is_relative_to(warehouse.home)
    assert (build.target_path / "run_results.json").exists()
    assert not (warehouse.dbt_project_dir / "target").exists()
    assert not (warehouse.dbt_project_dir / "logs").exists()
