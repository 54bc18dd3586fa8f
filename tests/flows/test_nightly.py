"""The nightly end to end through Prefect: files due -> raw -> silver -> gold -> gates -> audit."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType

from carehouse.core.settings import Settings
from carehouse.ingest.due import due_files, file_date
from carehouse.warehouse.publish import gold_checksums
from tests.support.feeds import LATE_LABS_FILE
from tests.support.flows import BUSINESS_DATE, rows
from tests.support.warehouse import ADMISSIONS, EXPECTED_GOLD, fetch_gold

pytestmark = pytest.mark.slow

# The run log grows by one row per run: it is the one gold table a rerun must change.
RUN_LOG = "pipeline_run_audit"


def test_the_first_nightly_loads_builds_gates_publishes_and_records_itself(
    flow_env: Settings, first_night: object
) -> None:
    from flows.summary import RunSummary

    summary = first_night
    assert isinstance(summary, RunSummary)
    loads = {load.source: load for load in summary.loads}
    assert set(loads) == {"patients", "admissions", "labs"}
    admissions = loads["admissions"]
    assert admissions.received == len(ADMISSIONS)
    assert admissions.loaded + admissions.quarantined_total == admissions.received
    # Tomorrow's labs file landed already but waits for its own business date.
    assert [f.name for f in loads["labs"].files] == ["labs_2026-03-20.ndjson"]
    assert fetch_gold(flow_env) == EXPECTED_GOLD
    assert [(gate.layer, gate.passed) for gate in summary.gates] == [
        ("raw", True),
        ("silver", True),
        ("gold", True),
    ]
    assert summary.published_tables > 0
    assert summary.freshness and not [f for f in summary.freshness if f.stale]
    for layer in ("raw", "silver", "gold"):
        assert (flow_env.reports_dir / summary.run_id / f"{layer}.md").exists()

    # One row for the run, in audit and in gold, final: counts per source, gates, steps.
    (audit,) = rows(
        flow_env,
        "select status, failed_step, admissions_rows_received, admissions_rows_loaded,"
        " admissions_rows_quarantined, labs_rows_loaded, raw_gate_outcome, silver_gate_outcome,"
        " gold_gate_outcome, is_every_gate_passed, step_durations ? 'publish',"
        " gold_freshness ? 'avg_los_by_department'"
        " from gold.pipeline_run_audit where run_id = %s",
        (summary.run_id,),
    )
    assert audit == (
        "succeeded",
        None,
        admissions.received,
        admissions.loaded,
        admissions.quarantined_total,
        loads["labs"].loaded,
        "passed",
        "passed",
        "passed",
        True,
        True,
        True,
    )

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary.run_id]))
        )
        artifacts = {artifact.key for artifact in client.read_artifacts()}
    assert run.state_type == StateType.COMPLETED
    assert {
        "nightly-summary",
        "nightly-loads",
        "nightly-rows-per-layer",
        "gate-raw",
        "gate-silver",
        "gate-gold",
    } <= artifacts


def test_three_nightlies_of_one_day_leave_gold_and_snapshots_as_they_were(
    flow_env: Settings, first_night: object
) -> None:
    from flows.nightly import nightly

    checksums, versions = [], []
    for _ in range(3):
        summary = nightly(business_date=BUSINESS_DATE)
        checksums.append({k: v for k, v in gold_checksums(flow_env).items() if k != RUN_LOG})
        versions.append(rows(flow_env, "select count(*) from snapshots.patients_snapshot"))
        assert [load.loaded for load in summary.loads] == [0, 0, 0]
    assert checksums[1] == checksums[0]
    assert checksums[2] == checksums[0]
    assert versions[1] == versions[0] == versions[2]
    assert fetch_gold(flow_env) == EXPECTED_GOLD
    # Each run still recorded itself: one row per run.
    (succeeded,) = rows(
        flow_env, "select count(*) from gold.pipeline_run_audit where status = 'succeeded'"
    )
    assert int(str(succeeded[0])) >= 4


def test_a_file_dated_after_the_business_date_waits_and_a_late_one_is_taken(
    tmp_path: Path, flow_env: Settings
) -> None:
    folder = tmp_path / "landing" / "labs"
    folder.mkdir(parents=True)
    for name in ("labs_2026-03-18.ndjson", "labs_2026-03-20.ndjson", "labs_2026-03-21.ndjson"):
        (folder / name).write_text("{}\n", encoding="utf-8")
    (folder / "labs_resend.ndjson").write_text("{}\n", encoding="utf-8")
    settings = flow_env.model_copy(update={"landing_dir": tmp_path / "landing"})
    due = [path.name for path in due_files(settings, "labs", date(2026, 3, 20))]
    # The 18th arrived late (after its own nightly): still due. An undated file is due at once.
    assert due == ["labs_2026-03-18.ndjson", "labs_2026-03-20.ndjson", "labs_resend.ndjson"]
    assert file_date(LATE_LABS_FILE) == date(2026, 3, 21)
    assert file_date("labs_bundle_2026-02-30.json") is None
