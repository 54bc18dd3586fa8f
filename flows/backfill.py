"""Backfill: the nightly run for each business date of a range, in order."""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow

from flows.nightly import nightly
from flows.summary import RunSummary


@flow(name="backfill", log_prints=False)
def backfill(start_date: date, end_date: date) -> list[RunSummary]:
    """Run ``nightly`` for every date from ``start_date`` to ``end_date`` inclusive, in order.

    Each date is a nightly subflow with its own run record; the first failure stops the
    backfill (later dates would build on a day that did not publish). Safe to repeat: a
    repeated date loads nothing new and publishes the same gold.
    """
    if end_date < start_date:
        raise ValueError(f"backfill range is empty: {start_date} is after {end_date}")
    summaries = []
    day = start_date
    while day <= end_date:
        summaries.append(nightly(business_date=day))
        day += timedelta(days=1)
    return summaries
