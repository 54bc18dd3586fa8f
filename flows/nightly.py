"""The nightly batch: load the day's files, gate raw, build, gate, publish, check, record."""

from __future__ import annotations

from datetime import date

from prefect import flow

from carehouse.core.settings import get_settings
from carehouse.ingest.due import yesterday
from flows.pipeline import run_pipeline
from flows.summary import RunSummary

__all__ = ["nightly"]


@flow(name="nightly", log_prints=False)
def nightly(business_date: date | None = None) -> RunSummary:
    """Load, gate raw, build silver, gate, build gold_next, gate, publish, check freshness.

    ``business_date`` defaults to yesterday in the hospital's timezone. One row in
    audit.pipeline_runs / gold.pipeline_run_audit either way (a failed run names its step).
    Files due are those dated on or before the business date and not loaded yet
    (carehouse.ingest.due): a late file is taken by the next run. Safe to repeat.
    """
    # The flow is an entry point (also of deployments): it reads the settings itself.
    settings = get_settings()
    return run_pipeline(
        settings, business_date or yesterday(settings.hospital_timezone), flow="nightly"
    )
