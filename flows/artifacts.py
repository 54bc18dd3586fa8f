"""Prefect artifacts of a pipeline run: a Markdown summary, tables of counts, gate reports.

They show in the Prefect UI on the flow run (and under Artifacts by key, run after run).
Counts, gate outcomes and durations only: never row content (gate reports carry technical
sample keys at most, see carehouse.quality.gates).
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from carehouse.audit import runs as run_audit
from carehouse.core.settings import Settings
from flows.summary import RunSummary


def summary_markdown(
    settings: Settings,
    summary: RunSummary,
    record: run_audit.RunRecord,
    error: BaseException | None,
) -> str:
    """The run's Markdown summary."""
    verdict = "succeeded" if error is None else f"FAILED at `{record.failed_step}`"
    lines = [
        f"# {summary.flow} {summary.business_date}: {verdict}",
        "",
        f"- run: `{summary.run_id}`, {summary.seconds:.1f}s",
        "- gates: " + ", ".join(f"{k} {v}" for k, v in record.gate_outcomes.items()),
        f"- published: {summary.published_tables} relations into gold",
        f"- gate reports: `{settings.reports_dir / summary.run_id}`",
    ]
    if error is not None:
        # The first line only: it names the failed gate, dbt nodes or step.
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        lines.append(f"- error: {type(error).__name__}: {first}")
    stale = [result for result in summary.freshness if result.stale]
    if summary.freshness:
        lines.append(f"- freshness: {len(summary.freshness) - len(stale)} gold tables within SLA")
    lines += ["", "## Steps (seconds)", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {step} | {seconds:.1f} |" for step, seconds in record.step_durations.items()]
    return "\n".join(lines) + "\n"


def publish_run_artifacts(
    settings: Settings,
    summary: RunSummary,
    record: run_audit.RunRecord,
    error: BaseException | None,
) -> None:
    """Create the run's artifacts on its Prefect flow run."""
    key = summary.flow
    create_markdown_artifact(
        markdown=summary_markdown(settings, summary, record, error),
        key=f"{key}-summary",
        description=f"{summary.flow} run summary",
    )
    create_table_artifact(
        table=[
            {
                "source": load.source,
                "received": load.received,
                "loaded": load.loaded,
                "quarantined": load.quarantined_total,
                "files skipped": len(load.skipped_files),
            }
            for load in summary.loads
        ],
        key=f"{key}-loads",
        description="Records received, loaded and quarantined per source",
    )
    if summary.layers:
        create_table_artifact(
            table=[{"layer": layer, "rows": rows} for layer, rows in summary.layers.items()],
            key=f"{key}-rows-per-layer",
            description="Rows per warehouse layer after the run",
        )
    reports = settings.reports_dir / summary.run_id
    for report in sorted(reports.glob("*.md")) if reports.is_dir() else []:
        create_markdown_artifact(
            markdown=report.read_text(encoding="utf-8"),
            key=f"gate-{report.stem}",
            description=f"Quality gate report: {report.stem}",
        )
