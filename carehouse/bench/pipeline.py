"""The nightly's stages and the baselines `carehouse bench` adds to `bench ingest`'s.

Each function takes the run's settings and the landing folder and returns how
many records it handled. The nightly's steps call the very functions the
Prefect tasks wrap (`task.fn`), so a stage here is what the flow runs, minus
Prefect.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from psycopg import sql

from carehouse.core.database import connect
from carehouse.core.settings import Settings
from carehouse.warehouse.dbt import dbt_paths

BENCH_SCHEMA = "bench"
DIRECT_SCHEMA = "bench_direct"
TO_SQL_CHUNK = 10_000
# The large facts and everything upstream of them: full refresh vs one new day.
FACTS_SELECTION = ["--select", "+fct_vitals", "+fct_lab_results"]
# Every dbt stage runs in this lane (its own target under the run's home), as the nightly
# runs in its flow run's: the gold build reads the silver build's manifest from it.
LANE = "bench"


def run_id(kind: str) -> str:
    """A run id the gates accept, unique per process."""
    return f"bench-{kind}-{int(time.time() * 1000)}"


# ---- baselines ---------------------------------------------------------------------------


def admissions_to_sql(settings: Settings, data_dir: Path) -> int:
    """Baseline: what a naive pipeline does, `pandas.read_csv(file).to_sql(...)` per file."""
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs installed
    from sqlalchemy import create_engine

    # SQLAlchemy's psycopg 3 dialect; the admin role owns the scratch schema.
    url = settings.admin_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    rows = 0
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"create schema if not exists {BENCH_SCHEMA}")
            conn.exec_driver_sql(f"drop table if exists {BENCH_SCHEMA}.admissions_to_sql")
        for path in sorted((data_dir / "admissions").glob("*.csv")):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            frame.to_sql(
                "admissions_to_sql",
                engine,
                schema=BENCH_SCHEMA,
                if_exists="append",
                index=False,
                chunksize=TO_SQL_CHUNK,
            )
            rows += len(frame)  # to_sql's own count is the driver's, -1 per executemany
    finally:
        engine.dispose()
    return rows


def vitals_consume_copy(settings: Settings, data_dir: Path) -> int:
    """Baseline: confluent-kafka consume + COPY of (coordinates, timestamp, value), no dlt.

    The sink's limit: no parsing, no validation, no exactly-once bookkeeping;
    one COPY per consumed batch, committed at the end.
    """
    from carehouse.bench.stages import baseline_consumer, batches_to_end

    table = sql.Identifier(BENCH_SCHEMA, "vitals_copy")
    consumer = baseline_consumer(settings, "carehouse-bench-consume-copy")
    messages = 0
    try:
        with connect(settings, "admin") as conn:
            conn.execute(
                sql.SQL("create schema if not exists {}").format(sql.Identifier(BENCH_SCHEMA))
            )
            conn.execute(sql.SQL("drop table if exists {}").format(table))
            conn.execute(
                sql.SQL(
                    "create table {} (kafka_partition integer, kafka_offset bigint,"
                    " kafka_timestamp bigint, message_value bytea)"
                ).format(table)
            )
            copy = sql.SQL("copy {} from stdin").format(table)
            with conn.cursor() as cursor:
                for batch in batches_to_end(consumer):
                    if batch:
                        with cursor.copy(copy) as stream:
                            for message in batch:
                                stream.write_row(
                                    (
                                        message.partition(),
                                        message.offset(),
                                        message.timestamp()[1],
                                        message.value(),
                                    )
                                )
                        messages += len(batch)
            conn.commit()
    finally:
        consumer.close()
    return messages


# ---- the nightly's steps, one at a time ------------------------------------------------


def gate_raw(settings: Settings, data_dir: Path) -> int:
    """The raw gate (each source's latest load), as the flow's gate task runs it."""
    from flows.tasks import gate_task

    return _checks(gate_task.fn(settings, "raw", run_id("raw")))


def gate_silver(settings: Settings, data_dir: Path) -> int:
    """The silver gate."""
    from flows.tasks import gate_task

    return _checks(gate_task.fn(settings, "silver", run_id("silver")))


def gate_gold(settings: Settings, data_dir: Path) -> int:
    """The gold gate, on gold_next before the publish."""
    from flows.tasks import gate_task

    return _checks(gate_task.fn(settings, "gold", run_id("gold"), schema="gold_next"))


def _checks(result: Any) -> int:
    return len(result.checks)


def dbt_build_silver(settings: Settings, data_dir: Path) -> int:
    """The nightly's two silver steps, with their tests (the first build).

    The vitals stream's staging table, then seeds, staging, quarantine, snapshots, silver.
    """
    from flows.tasks import build_silver_task, build_vitals_staging_task

    staging = build_vitals_staging_task.fn(settings, LANE)
    return len(staging.nodes) + len(build_silver_task.fn(settings, LANE).nodes)


def dbt_build_gold(settings: Settings, data_dir: Path) -> int:
    """The marts into gold_next, with their tests (the first build: no incremental state)."""
    from carehouse.warehouse.dbt import DbtResult
    from flows.tasks import build_gold_next_task

    # The task reads only the silver build's target (its manifest); that build ran in the
    # previous stage's process, in the same lane.
    target, logs = dbt_paths(settings, LANE)
    silver = DbtResult(("build",), 0, 0.0, (), target, logs)
    return len(build_gold_next_task.fn(settings, silver, LANE).nodes)


def publish(settings: Settings, data_dir: Path) -> int:
    """Move the verified gold_next into gold."""
    from flows.tasks import publish_task

    return sum(publish_task.fn(settings, run_id("publish")).row_counts.values())


def dbt_full_refresh(settings: Settings, data_dir: Path) -> int:
    """The large facts and their upstream models rebuilt from scratch."""
    from carehouse.warehouse.dbt import run_dbt

    return len(run_dbt(settings, ["run", *FACTS_SELECTION, "--full-refresh"], lane=LANE).nodes)


def dbt_incremental(settings: Settings, data_dir: Path) -> int:
    """The same selection, incrementally, after one new day arrived."""
    from carehouse.warehouse.dbt import run_dbt

    return len(run_dbt(settings, ["run", *FACTS_SELECTION], lane=LANE).nodes)


def gold_sql_direct(settings: Settings, data_dir: Path) -> int:
    """Baseline: the gold models' compiled SQL, run with psycopg in dbt's order.

    Reads the manifest and run results the gold build just wrote; each model
    becomes a table (or a view, for views) in a scratch schema, reading the
    same upstream relations dbt read. Returns the rows written.
    """
    target, _ = dbt_paths(settings, LANE)
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    rows = 0
    with connect(settings, "admin") as conn:
        schema = sql.Identifier(DIRECT_SCHEMA)
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(schema))
        conn.execute(sql.SQL("create schema {}").format(schema))
        for result in results:
            node = manifest["nodes"].get(result["unique_id"])
            if node is None or node["resource_type"] != "model":
                continue
            code = _compiled_code(node, target)
            relation = sql.Identifier(DIRECT_SCHEMA, node["alias"])
            if node["config"]["materialized"] == "view":
                statement = sql.SQL("create view {} as {}").format(relation, sql.SQL(code))
            else:
                statement = sql.SQL("create table {} as {}").format(relation, sql.SQL(code))
            cursor = conn.execute(statement)
            rows += max(cursor.rowcount, 0)
        conn.commit()
    return rows


def _compiled_code(node: dict[str, Any], target: Path) -> str:
    code = node.get("compiled_code")
    if not code:
        path = target / "compiled" / node["package_name"] / node["original_file_path"]
        code = path.read_text()
    # dbt wraps nothing around compiled SQL, but a trailing semicolon would end `create as`.
    return str(code).strip().rstrip(";")


# ---- the whole nightly -------------------------------------------------------------------


def nightly_plain(settings: Settings, data_dir: Path) -> int:
    """What `carehouse run` does after the demo data, without Prefect.

    Drain, then the nightly's steps as plain calls of the functions its tasks
    wrap, in the flow's order. Returns the records loaded.
    """
    from carehouse.ingest.batch import BATCH_SOURCES
    from carehouse.ingest.due import yesterday
    from carehouse.ingest.vitals.drain import drain_vitals
    from flows.tasks import (
        build_gold_next_task,
        build_silver_task,
        build_vitals_staging_task,
        count_rows_task,
        freshness_task,
        gate_task,
        load_task,
        publish_task,
    )

    drained = drain_vitals(settings, until_caught_up=True).received
    run = run_id("plain")
    day = yesterday(settings.hospital_timezone)
    loads = [load_task.fn(settings, source, day, run) for source in BATCH_SOURCES]
    load_ids = {f"{load.source}_load_id": load.load_id for load in loads if load.load_id}
    gate_task.fn(settings, "raw", run, variables=load_ids)
    build_vitals_staging_task.fn(settings, run)
    silver = build_silver_task.fn(settings, run)
    gate_task.fn(settings, "silver", run)
    build_gold_next_task.fn(settings, silver, run)
    gate_task.fn(settings, "gold", run, schema="gold_next")
    publish_task.fn(settings, run)
    freshness_task.fn(settings)
    count_rows_task.fn(settings)
    return drained + sum(load.received for load in loads)


def nightly_prefect(settings: Settings, data_dir: Path) -> int:
    """The same: drain, then the Prefect `nightly` flow against the Prefect server."""
    from carehouse.ingest.vitals.drain import drain_vitals
    from flows.nightly import nightly

    drained = drain_vitals(settings, until_caught_up=True).received
    summary = nightly()
    return drained + sum(load.received for load in summary.loads)
