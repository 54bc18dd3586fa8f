"""`carehouse run`, the job behind `make run`: services up, demo data, pipeline, summary.

The real flows run, as Prefect flow runs against the (embedded) server: ``vitals`` until the
stream is caught up, then one ``nightly`` for the last demo day, which loads every demo day's
files (a nightly takes the files dated on or before its business date that are not loaded
yet). A nightly per demo day (``carehouse backfill``) gives the same gold, slower.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import TYPE_CHECKING

from carehouse.core.environment import apply_to_process
from carehouse.core.settings import Settings
from carehouse.services.lifecycle import up

if TYPE_CHECKING:
    from flows.summary import RunSummary
    from flows.vitals import VitalsSummary


def landing_is_empty(settings: Settings) -> bool:
    """True when no source file waits in the landing folder."""
    folder = settings.landing_dir
    return not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


def main_job(settings: Settings, *, demo_days: int, demo_scale: float) -> int:
    """Run everything once and print the summary; returns the process exit code."""
    started = time.monotonic()
    ready = up(settings)
    # The demo's last day is the nightly's business date: every demo file is due.
    last_day = date.today() - timedelta(days=1)
    if landing_is_empty(ready):
        from carehouse.demo.hospital import generate_hospital

        output = generate_hospital(
            ready,
            seed=42,
            end_date=last_day,
            days=demo_days,
            scale=demo_scale,
        )
        print(f"{output.one_line()} (landing folder {ready.landing_dir})")
    apply_to_process(ready)
    # Imported only now: Prefect reads PREFECT_API_URL when it is first imported.
    from carehouse.warehouse.guards import ensure_concurrency_limit
    from flows.nightly import nightly
    from flows.vitals import vitals

    ensure_concurrency_limit()
    # The stream first, so tonight's build sees every vital sign that has arrived.
    stream = vitals(until_caught_up=True)
    summary = nightly(business_date=last_day)
    print(render_summary(ready, summary, time.monotonic() - started, stream))
    return 0


def render_summary(
    settings: Settings,
    summary: RunSummary,
    wall_seconds: float,
    stream: VitalsSummary | None = None,
) -> str:
    """The text `make run` ends with."""
    lines = ["", "carehouse run complete", "=" * 22]
    if stream is not None:
        lines.append(f"stream {stream.one_line()}")
    for load in summary.loads:
        lines.append(f"load   {load.one_line()}")
    lines.append("rows per layer:")
    for layer, rows in summary.layers.items():
        lines.append(f"  {layer:<12} {rows:>10,}")
    for table, rows in summary.table_rows.items():
        if table.startswith("gold."):
            lines.append(f"  {table:<40} {rows:>10,}")
    for gate in summary.gates:
        lines.append(f"gate   {gate.one_line()}")
    lines.append(f"publish: {summary.published_tables} verified relations moved into gold")
    stale = [result.describe() for result in summary.freshness if result.stale]
    lines.append(
        f"fresh:  {len(summary.freshness) - len(stale)} gold tables within their SLA"
        + (f"; stale: {', '.join(stale)}" if stale else "")
    )
    lines.append(f"audit:  run {summary.run_id} {summary.status} (gold.pipeline_run_audit)")
    lines += [
        f"wall time: {wall_seconds:.1f}s (pipeline {summary.seconds:.1f}s)",
        "",
        f"reports:    {settings.reports_dir / summary.run_id}",
        f"Prefect UI: {settings.prefect_api.removesuffix('/api')}/runs/flow-run/{summary.run_id}",
        'query gold: eval "$(carehouse env)" && psql -c "select * from gold.avg_los_by_department"',
        '            or: psql "$(carehouse dsn --role bi)"',
        "by hand:    dbt build --project-dir dbt --profiles-dir dbt;  soda contract verify ...",
        "stop:       carehouse down",
    ]
    return "\n".join(lines)


def flow_job(
    settings: Settings,
    name: str,
    *,
    business_date: date | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    duration: float | None = None,
    until_caught_up: bool = False,
) -> int:
    """Run one flow (nightly, backfill, vitals, full-refresh) here, as a Prefect flow run.

    Starts what `carehouse up` starts first; returns the process exit code.
    """
    ready = up(settings)
    apply_to_process(ready)
    # Imported only now: Prefect reads PREFECT_API_URL when it is first imported.
    from flows.backfill import backfill
    from flows.full_refresh import full_refresh
    from flows.nightly import nightly
    from flows.vitals import vitals

    started = time.monotonic()
    if name == "nightly":
        summary = nightly(business_date=business_date)
        print(render_summary(ready, summary, time.monotonic() - started))
    elif name == "backfill":
        if start_date is None or end_date is None:
            raise ValueError("a backfill needs a start and an end date")
        for day in backfill(start_date=start_date, end_date=end_date):
            print(f"{day.business_date}: run {day.run_id} {day.status}, {day.seconds:.1f}s")
    elif name == "full-refresh":
        print(render_summary(ready, full_refresh(), time.monotonic() - started))
    elif name == "vitals":
        print(vitals(duration=duration, until_caught_up=until_caught_up).one_line())
    else:
        raise ValueError(f"unknown flow {name!r}")
    return 0
