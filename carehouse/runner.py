"""`carehouse run`, the job behind `make run`: services up, demo data, pipeline, summary."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import TYPE_CHECKING

from carehouse.environment import apply_to_process
from carehouse.services.lifecycle import up
from carehouse.settings import Settings

if TYPE_CHECKING:
    from flows.nightly import NightlySummary


def landing_is_empty(settings: Settings) -> bool:
    """True when no source file waits in the landing folder."""
    folder = settings.landing_dir
    return not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


def main_job(settings: Settings, *, demo_days: int, demo_scale: float) -> int:
    """Run everything once and print the summary; returns the process exit code."""
    started = time.monotonic()
    ready = up(settings)
    if landing_is_empty(ready):
        from carehouse.demo.hospital import generate_hospital

        output = generate_hospital(
            ready,
            seed=42,
            end_date=date.today() - timedelta(days=1),
            days=demo_days,
            scale=demo_scale,
        )
        print(f"{output.one_line()} (landing folder {ready.landing_dir})")
    from carehouse.ingest.vitals import drain_vitals

    # The stream first, so tonight's build sees every vital sign that has arrived.
    vitals = drain_vitals(ready, until_caught_up=True)
    print(f"drain  {vitals.one_line()}")
    apply_to_process(ready)
    # Imported only now: Prefect reads PREFECT_API_URL when it is first imported.
    from flows.nightly import nightly

    summary = nightly()
    print(render_summary(ready, summary, time.monotonic() - started))
    return 0


def render_summary(settings: Settings, summary: NightlySummary, wall_seconds: float) -> str:
    """The text `make run` ends with."""
    lines = ["", "carehouse run complete", "=" * 22]
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
    lines += [
        f"wall time: {wall_seconds:.1f}s (pipeline {summary.seconds:.1f}s)",
        "",
        f"reports:    {settings.reports_dir / summary.run_id}",
        f"Prefect UI: {settings.prefect_api.removesuffix('/api')}",
        'query gold: eval "$(carehouse env)" && psql -c "select * from gold.avg_los_by_department"',
        '            or: psql "$(carehouse dsn --role bi)"',
        "by hand:    dbt build --project-dir dbt --profiles-dir dbt;  soda contract verify ...",
        "stop:       carehouse down",
    ]
    return "\n".join(lines)
