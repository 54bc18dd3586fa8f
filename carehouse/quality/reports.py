"""A gate's JSON and Markdown reports under ``reports/<run_id>/<layer>.*``."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

from carehouse.core.settings import Settings
from carehouse.quality.results import GateResult, describe_check


def write_reports(settings: Settings, result: GateResult) -> GateResult:
    """Write the result's reports; returns the result with their paths."""
    directory = settings.reports_dir / result.run_id
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{result.layer}.json"
    markdown_path = directory / f"{result.layer}.md"
    payload = asdict(result)
    payload.pop("report_json")
    payload.pop("report_markdown")
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    markdown_path.write_text(_markdown(result), encoding="utf-8")
    return replace(result, report_json=json_path, report_markdown=markdown_path)


def _markdown(result: GateResult) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [
        f"# Gate `{result.layer}`: {verdict}",
        "",
        f"- run: `{result.run_id}`",
        f"- started: {result.started_at}, finished: {result.finished_at}",
    ]
    if result.schema is not None:
        lines.append(f"- schema verified: `{result.schema}`")
    if result.variables:
        lines.append(
            "- variables: " + ", ".join(f"`{k}={v}`" for k, v in sorted(result.variables.items()))
        )
    lines += [
        f"- contracts: {', '.join(f'`{name}`' for name in result.contracts)}",
        f"- checks: {len(result.checks)}, failing: {len(result.failed_checks)},"
        f" warnings: {len(result.warned_checks)}",
    ]
    for title, selected in (
        ("Failing checks", result.failed_checks),
        ("Warnings", result.warned_checks),
    ):
        if selected:
            lines += ["", f"## {title}", ""]
            lines += [f"- {_markdown_cell(describe_check(check))}" for check in selected]
    if result.errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {_markdown_cell(error)}" for error in result.errors]
    lines += [
        "",
        "## All checks",
        "",
        "| contract | column | check | outcome | measured | threshold | warn threshold |",
        "|---|---|---|---|---|---|---|",
    ]
    for check in result.checks:
        measured = "" if check.measured_value is None else str(check.measured_value)
        cells = [
            check.contract,
            check.column or "(dataset)",
            check.check,
            check.outcome,
            measured,
            check.threshold or "",
            check.warn_threshold or "",
        ]
        lines.append("| " + " | ".join(_markdown_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
