"""The thin slice end to end through Prefect: CSV in landing -> raw -> staging -> gold -> gate."""

from __future__ import annotations

import csv
import json
import secrets
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType

from carehouse.demo.vitals import produce_vitals
from carehouse.ingest.vitals import drain_vitals
from carehouse.settings import Settings
from tests.dbt.clinical import GLUCOSE, PATIENT_HEADER, observation
from tests.dbt.warehouse import (
    ADMISSIONS,
    EXPECTED_GOLD,
    RAW_COLUMNS,
    fetch_gold,
    isolated_warehouse,
)

pytestmark = pytest.mark.slow


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
        topic = f"nightly-vitals-{secrets.token_hex(4)}"
        monkeypatch.setenv("CAREHOUSE_VITALS_TOPIC", topic)
        yield warehouse.model_copy(update={"landing_dir": landing, "vitals_topic": topic})


def test_nightly_loads_builds_gates_and_records_the_run(nightly_env: Settings) -> None:
    from flows.nightly import nightly

    received = write_landing_csvs(nightly_env.landing_dir)
    write_other_feeds(nightly_env, nightly_env.landing_dir)
    state = nightly(business_date=date(2026, 3, 20), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()

    loads = {load.source: load for load in summary.loads}
    assert set(loads) == {"patients", "admissions", "labs"}
    load = loads["admissions"]
    assert load.received == received
    assert load.loaded + sum(load.quarantined.values()) == received
    assert fetch_gold(nightly_env) == EXPECTED_GOLD
    assert [(gate.layer, gate.passed) for gate in summary.gates] == [
        ("raw", True),
        ("silver", True),
        ("gold", True),
    ]
    assert summary.published_tables > 0
    for layer in ("raw", "silver", "gold"):
        assert (nightly_env.reports_dir / summary.run_id / f"{layer}.md").exists()
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
