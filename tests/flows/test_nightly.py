"""The thin slice end to end through Prefect: CSV in landing -> raw -> staging -> gold -> gate."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType

from carehouse.settings import Settings
from tests.dbt.warehouse import (
    ADMISSIONS,
    EXPECTED_GOLD,
    RAW_COLUMNS,
    fetch_gold,
    isolated_warehouse,
)

pytestmark = pytest.mark.slow


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


@pytest.fixture()
def nightly_env(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """An isolated database and landing folder, exported the way a deployment sees them."""
    with isolated_warehouse(settings, "nightly") as warehouse:
        landing = tmp_path / "landing"
        monkeypatch.setenv("CAREHOUSE_LANDING_DIR", str(landing))
        monkeypatch.setenv("CAREHOUSE_DATABASE_URL", warehouse.admin_dsn)
        for role in ("loader", "transformer", "bi"):
            monkeypatch.setenv(f"CAREHOUSE_{role.upper()}_PASSWORD", warehouse.role_password(role))
        yield warehouse.model_copy(update={"landing_dir": landing})


def test_nightly_loads_builds_gates_and_records_the_run(nightly_env: Settings) -> None:
    from flows.nightly import nightly

    received = write_landing_csvs(nightly_env.landing_dir)
    state = nightly(business_date=date(2026, 3, 20), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()

    loads = {load.source: load for load in summary.loads}
    assert set(loads) == {"patients", "admissions", "labs"}
    # Only admissions arrived: the other sources load nothing, and say so.
    assert loads["patients"].received == loads["labs"].received == 0
    load = loads["admissions"]
    assert load.received == received
    assert load.loaded + sum(load.quarantined.values()) == received
    assert fetch_gold(nightly_env) == EXPECTED_GOLD
    (gate,) = summary.gates
    assert gate.layer == "gold" and gate.passed
    assert (nightly_env.reports_dir / summary.run_id / "gold.md").exists()
    assert summary.table_rows["gold.avg_los_by_department"] == len(EXPECTED_GOLD)

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary.run_id]))
        )
    assert [run.state_type for run in runs] == [StateType.COMPLETED]

    # A second run of the same day loads nothing again and leaves gold as it was.
    again = nightly(business_date=date(2026, 3, 20))
    assert [again_load.loaded for again_load in again.loads] == [0, 0, 0]
    assert fetch_gold(nightly_env) == EXPECTED_GOLD
    with psycopg.connect(nightly_env.dsn("transformer")) as conn:
        raw = conn.execute("select count(*) from raw_admissions.admissions").fetchone()
    assert raw == (load.loaded,)
