"""What a batch pipeline run did, and the Prefect flow run it belongs to.

Shared by the pipeline that fills it, the artifacts that show it and the flows that return
it (``nightly``, ``backfill``, ``full_refresh``), so it lives below all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from prefect.runtime import flow_run

from carehouse.ingest.summary import LoadSummary
from carehouse.quality.freshness import TableFreshness
from carehouse.quality.results import GateResult


@dataclass
class RunSummary:
    """What one batch pipeline run (nightly or full refresh) did: printed, in artifacts, audited."""

    run_id: str
    business_date: date
    flow: str = "nightly"
    loads: list[LoadSummary] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    dbt_nodes: int = 0
    published_tables: int = 0
    layers: dict[str, int] = field(default_factory=dict)
    freshness: list[TableFreshness] = field(default_factory=list)
    status: str = "running"
    failed_step: str | None = None


def current_run_id() -> str:
    """The Prefect flow run id (every flow here runs as one)."""
    run_id = flow_run.get_id()
    if not run_id:
        raise RuntimeError("the pipeline runs inside a Prefect flow run")
    return str(run_id)
