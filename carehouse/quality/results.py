"""What a quality gate found: one result per check and one per verified layer.

Values are aggregates (counts, rates), thresholds, column names and, for failing or warning
checks, sample technical keys: never row content. These types are shared by the gate, its
reports and its audit rows (carehouse.quality.records).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Outcome = Literal["pass", "fail", "warn", "not_evaluated", "excluded"]

# Outcomes that let a gate pass; anything else (fail, or a check that could not run) stops it.
# A warning passes only because its contract declared that threshold `level: warn`.
PASSING_OUTCOMES: frozenset[str] = frozenset({"pass", "warn", "excluded"})


@dataclass(frozen=True)
class CheckResult:
    """One contract check's outcome; values are aggregates (counts, rates), never rows."""

    contract: str
    dataset: str
    check: str
    check_type: str
    column: str | None
    outcome: Outcome
    measured_value: float | int | None
    threshold: str | None
    diagnostics: dict[str, float | int | str | list[str]] = field(default_factory=dict)
    warn_threshold: str | None = None
    # "col=value, col=value" in the contract's sample key columns, for failing/warning checks.
    sample_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateResult:
    """The outcome of one layer's gate in one pipeline run."""

    layer: str
    run_id: str
    passed: bool
    checks: tuple[CheckResult, ...]
    errors: tuple[str, ...]
    started_at: str
    finished_at: str
    contracts: tuple[str, ...]
    report_json: Path | None = None
    report_markdown: Path | None = None
    # The schema verified instead of the contracts' default (gold_next), if any.
    schema: str | None = None
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        """Checks that failed or could not be evaluated."""
        return tuple(check for check in self.checks if check.outcome not in PASSING_OUTCOMES)

    @property
    def warned_checks(self) -> tuple[CheckResult, ...]:
        """Checks past a threshold their contract declares a warning."""
        return tuple(check for check in self.checks if check.outcome == "warn")

    def one_line(self) -> str:
        """`gold: passed (10 checks over 1 contract)`, or the failing count."""
        errors = f", {len(self.errors)} error(s)" if self.errors else ""
        verdict = "passed" if self.passed else f"FAILED ({len(self.failed_checks)} failing{errors})"
        warned = f", {len(self.warned_checks)} warning(s)" if self.warned_checks else ""
        return (
            f"{self.layer}: {verdict} ({len(self.checks)} checks over "
            f"{len(self.contracts)} contract{'s' if len(self.contracts) != 1 else ''}{warned})"
        )


class GateError(RuntimeError):
    """The gate could not run at all (no contracts, bad data source configuration)."""


class GateFailed(RuntimeError):
    """A gate did not pass; the message lists every failing check and error."""

    def __init__(self, result: GateResult) -> None:
        super().__init__(failure_message(result))
        self.result = result


def require_passed(result: GateResult) -> GateResult:
    """Return the result if the gate passed; raise GateFailed otherwise."""
    if not result.passed:
        raise GateFailed(result)
    return result


def describe_check(check: CheckResult) -> str:
    """`Average LOS is not negative [fail] on dataset.column, measured 1, expected = 0; ...`."""
    where = f"{check.dataset}.{check.column}" if check.column else check.dataset
    text = f"{check.check} [{check.outcome}] on {where}"
    if check.measured_value is not None:
        text += f", measured {check.measured_value}"
    expected = check.warn_threshold if check.outcome == "warn" else check.threshold
    if expected:
        text += f", expected {expected}"
    details = {
        key: value
        for key, value in check.diagnostics.items()
        if key in ("missing_columns", "unexpected_columns", "type_mismatches")
        or key.endswith(("_count", "_percent"))
        or key == "sample_keys_unavailable"
    }
    if details:
        text += "; " + ", ".join(f"{key}: {value}" for key, value in sorted(details.items()))
    if check.sample_keys:
        text += "; sample keys: " + "; ".join(f"({key})" for key in check.sample_keys)
    return text


def failure_message(result: GateResult) -> str:
    """Why a gate failed: every failing check and error, and where its report is."""
    where = f" (schema {result.schema})" if result.schema else ""
    lines = [f"gate {result.layer!r}{where} failed in run {result.run_id!r}"]
    lines += [f"  - {describe_check(check)}" for check in result.failed_checks]
    lines += [f"  - error: {error}" for error in result.errors]
    if not result.checks and not result.errors:
        lines.append("  - no check was evaluated")
    if result.report_markdown is not None:
        lines.append(f"  report: {result.report_markdown}")
    return "\n".join(lines)
