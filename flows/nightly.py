"""The nightly batch: load, transform, gate, summarise."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from prefect import flow
from prefect.runtime import flow_run

from carehouse.gates import GateResult
from carehouse.ingest.batch import BATCH_SOURCES
from carehouse.ingest.summary import LoadSummary
from carehouse.inventory import rows_by_layer
from carehouse.settings import get_settings
from flows.tasks import (
    build_gold_next_task,
    build_silver_task,
    count_rows_task,
    gate_task,
    load_task,
    publish_task,
)


@dataclass
class NightlySummary:
    """What one nightly run did, for the printed summary and the audit."""

    run_id: str
    business_date: date
    loads: list[LoadSummary]
    gates: list[GateResult]
    table_rows: dict[str, int]
    seconds: float
    dbt_nodes: int = 0
    published_tables: int = 0
    layers: dict[str, int] = field(default_factory=dict)


@flow(name="nightly", log_prints=False)
def nightly(business_date: date | None = None) -> NightlySummary:
    """Load every batch source, gate raw, build silver, gate it, build gold_next, gate, publish."""
    started = time.monotonic()
    # The flow is an entry point (also of deployments): it reads the settings itself.
    settings = get_settings()
    business_date = business_date or date.today() - timedelta(days=1)
    run_id = str(flow_run.get_id() or f"local-{int(time.time())}")
    loads = [load_task(settings, source) for source in BATCH_SOURCES]
    # The raw contracts check tonight's load of each source (its latest one if none came).
    load_ids = {f"{load.source}_load_id": load.load_id for load in loads if load.load_id}
    gates = [gate_task(settings, "raw", run_id, variables=load_ids)]
    silver = build_silver_task(settings)
    gates.append(gate_task(settings, "silver", run_id))
    gold = build_gold_next_task(settings)
    gates.append(gate_task(settings, "gold", run_id, schema="gold_next"))
    published = publish_task(settings, run_id)
    counts = count_rows_task(settings)
    return NightlySummary(
        run_id=run_id,
        business_date=business_date,
        loads=loads,
        gates=gates,
        table_rows=counts,
        seconds=time.monotonic() - started,
        dbt_nodes=len(silver.nodes) + len(gold.nodes),
        layers=rows_by_layer(counts),
        published_tables=len(published.tables),
    )
