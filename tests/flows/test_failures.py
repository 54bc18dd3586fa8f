"""Failure behaviour of the nightly: a failed gate, a dropped connection, overlapping runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from psycopg import sql

from carehouse.core.settings import PROJECT_ROOT, Settings
from carehouse.ingest.ledger import LEDGER_TABLE
from carehouse.warehouse.publish import gold_checksums
from dlt_sources.labs.settings import DATASET as LABS_DATASET
from dlt_sources.labs.settings import TABLE as LABS_TABLE
from tests.support.clinical import GLUCOSE, PATIENT_HEADER, observation
from tests.support.flows import BUSINESS_DATE, landing, rows
from tests.support.warehouse import ADMISSIONS

pytestmark = pytest.mark.slow

RUN_LOG = "pipeline_run_audit"
NEXT_DAY = date(2026, 3, 21)
# The snapshot's dbt_valid_to of a current row (dbt_valid_to_current in the snapshot).
CURRENT = datetime(9999, 12, 31)


def gold_without_run_log(settings: Settings) -> dict[str, str]:
    return {k: v for k, v in gold_checksums(settings).items() if k != RUN_LOG}


def test_a_failed_gold_gate_fails_the_run_leaves_gold_and_names_the_gate(
    flow_env: Settings, first_night: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.nightly import nightly

    # A real gate failure: the gold contracts, with one threshold no table can meet.
    soda = tmp_path / "soda"
    shutil.copytree(flow_env.soda_dir, soda)
    contract = soda / "contracts" / "gold" / "avg_los_by_department.yml"
    text = contract.read_text(encoding="utf-8")
    assert "must_be_greater_than: 0\n" in text
    contract.write_text(
        text.replace("must_be_greater_than: 0\n", "must_be_greater_than: 1000000000\n", 1),
        encoding="utf-8",
    )
    monkeypatch.setenv("CAREHOUSE_SODA_DIR", str(soda))
    before = gold_without_run_log(flow_env)

    state = nightly(business_date=BUSINESS_DATE, return_state=True)

    assert state.is_failed()
    assert "gate 'gold'" in str(state.message)
    assert gold_without_run_log(flow_env) == before
    run_id = str(state.state_details.flow_run_id)
    assert rows(
        flow_env,
        "select status, failed_step, raw_gate_outcome, silver_gate_outcome, gold_gate_outcome,"
        " is_every_gate_passed from gold.pipeline_run_audit where run_id = %s",
        (run_id,),
    ) == [("failed", "gate-gold", "passed", "passed", "failed", False)]
    # What failed stays inspectable: the gate report, and this run's dbt target.
    assert (flow_env.reports_dir / run_id / "gold.md").exists()
    assert (flow_env.home / "dbt" / "runs" / run_id / "target" / "manifest.json").exists()


@pytest.fixture()
def labs_load_dropped_once(flow_env: Settings) -> Iterator[None]:
    """The next labs load loses its database session (a dropped connection), once.

    A trigger on the labs load ledger terminates the backend that registers the load's files
    (dlt's own COPY jobs retry a dropped connection inside dlt; the ledger's does not): a
    sequence counts the firings (sequences are not rolled back with the killed transaction).
    """
    table = sql.Identifier(LABS_DATASET, LEDGER_TABLE)
    with psycopg.connect(flow_env.dsn("admin"), autocommit=True) as conn:
        conn.execute("create sequence public.labs_fault_firings")
        conn.execute(
            """
            create function public.drop_labs_load_once() returns trigger
            language plpgsql as $$
            begin
                if nextval('public.labs_fault_firings') = 1 then
                    perform pg_terminate_backend(pg_backend_pid());
                end if;
                return new;
            end $$
            """
        )
        conn.execute(
            sql.SQL(
                "create trigger drop_labs_load_once before insert on {} for each row"
                " execute function public.drop_labs_load_once()"
            ).format(table)
        )
        conn.execute("grant usage on sequence public.labs_fault_firings to public")
    try:
        yield
    finally:
        with psycopg.connect(flow_env.dsn("admin"), autocommit=True) as conn:
            conn.execute(sql.SQL("drop trigger drop_labs_load_once on {}").format(table))
            conn.execute("drop function public.drop_labs_load_once()")
            conn.execute("drop sequence public.labs_fault_firings")


def test_a_dropped_database_connection_in_a_load_is_retried_and_the_run_completes(
    flow_env: Settings, first_night: object, labs_load_dropped_once: None
) -> None:
    from flows.nightly import nightly

    # Tonight's second labs file: one more result.
    result = observation("L9", "P2", GLUCOSE, "2026-03-20T07:00:00Z", value=101, unit="mg/dL",
                         low=70, high=99, interpretation="H")  # fmt: skip
    (landing(flow_env, "labs") / "labs_2026-03-20_second.ndjson").write_text(
        json.dumps(result) + "\n", encoding="utf-8"
    )
    query = sql.SQL("select count(*) from {}").format(sql.Identifier(LABS_DATASET, LABS_TABLE))
    before = int(str(rows(flow_env, query)[0][0]))

    state = nightly(business_date=BUSINESS_DATE, return_state=True)

    assert state.is_completed(), state.message
    with psycopg.connect(flow_env.dsn("admin")) as conn:
        fired = conn.execute("select last_value from public.labs_fault_firings").fetchone()
    assert fired == (2,)  # killed on the first try, not on the second
    summary = state.result()
    labs = next(load for load in summary.loads if load.source == "labs")
    assert (labs.received, labs.loaded) == (1, 1)
    assert int(str(rows(flow_env, query)[0][0])) == before + 1  # once, not twice
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary.run_id]))
        )
    attempts = {run.name: run.run_count for run in task_runs if run.name.startswith("load-")}
    assert attempts == {"load-patients": 1, "load-admissions": 1, "load-labs": 2}


def test_two_overlapping_nightlies_keep_one_current_snapshot_row_per_patient(
    flow_env: Settings, first_night: object
) -> None:
    # A changed patient master: the snapshot gets new versions, which two concurrent
    # snapshot runs would duplicate.
    patients = sorted({record.patient_id for record in ADMISSIONS if record.patient_id})
    body = "\n".join(
        f"{patient},Given,Family,1970-01-01,F,2 Lane,AB1 2CD,INS2,SILVER,2026-03-21T09:00:00"
        for patient in patients
    )
    (landing(flow_env, "patients") / f"patients_{NEXT_DAY.isoformat()}.csv").write_text(
        PATIENT_HEADER + "\n" + body + "\n", encoding="utf-8"
    )
    publishes = rows(flow_env, "select count(*) from audit.publishes")[0][0]
    env = {
        **os.environ,
        "PREFECT_API_URL": flow_env.prefect_api,
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    script = (
        "from datetime import date; from flows.nightly import nightly;"
        f" nightly(business_date=date.fromisoformat('{NEXT_DAY.isoformat()}'))"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-3000:] for o in outputs)

    assert (
        rows(
            flow_env,
            "select patient_id from snapshots.patients_snapshot where dbt_valid_to = %s"
            " group by patient_id having count(*) > 1",
            (CURRENT,),
        )
        == []
    )
    assert rows(
        flow_env,
        "select count(distinct patient_id) from snapshots.patients_snapshot"
        " where dbt_valid_to = %s",
        (CURRENT,),
    ) == [(len(patients),)]
    assert rows(flow_env, "select count(*) from audit.publishes")[0][0] == int(str(publishes)) + 2
