"""Full refresh: rebuild silver and gold from raw, through gold_next, the gates and publish."""

from __future__ import annotations

from prefect import flow

from carehouse.core.settings import get_settings
from carehouse.ingest.due import yesterday
from flows.pipeline import run_pipeline
from flows.summary import RunSummary


@flow(name="full-refresh", log_prints=False)
def full_refresh() -> RunSummary:
    """Rebuild every incremental model of silver and gold from raw (`dbt --full-refresh`).

    Loads nothing; the raw gate checks each source's latest load. Gold is rebuilt into an
    empty gold_next, verified and published like any nightly, under the same guards, and
    the run is recorded like a nightly (business date: yesterday). Snapshots are not
    rebuilt (dbt never drops a snapshot's history on --full-refresh).
    """
    settings = get_settings()
    return run_pipeline(
        settings,
        yesterday(settings.hospital_timezone),
        flow="full-refresh",
        load=False,
        full_refresh=True,
    )
