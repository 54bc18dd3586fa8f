"""Quality gates: verify a layer's Soda data contracts and report every check.

A gate verifies every contract in ``soda/contracts/<layer>/`` in-process with soda-core,
writes a JSON and a Markdown report under ``reports/<run_id>/``, and returns the result.
It never retries and never raises because checks failed: the caller decides, usually with
:func:`require_passed`. Reports hold check names, thresholds and measured values only, never
row data.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

from carehouse.environment import TELEMETRY_OFF, database_environment
from carehouse.settings import Settings

Outcome = Literal["pass", "fail", "warn", "not_evaluated", "excluded"]

# Outcomes that let a gate pass; anything else (fail, or a check that could not run) stops it.
PASSING_OUTCOMES: frozenset[str] = frozenset({"pass", "warn", "excluded"})

_ENV_PLACEHOLDER = re.compile(r"\$\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.$-]*$")


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

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        """Checks that failed or could not be evaluated."""
        return tuple(check for check in self.checks if check.outcome not in PASSING_OUTCOMES)

    def one_line(self) -> str:
        """`gold: passed (10 checks over 1 contract)`, or the failing count."""
        verdict = "passed" if self.passed else f"FAILED ({len(self.failed_checks)} failing)"
        return (
            f"{self.layer}: {verdict} ({len(self.checks)} checks over "
            f"{len(self.contracts)} contract{'s' if len(self.contracts) != 1 else ''})"
        )


class GateError(RuntimeError):
    """The gate could not run at all (no contracts, bad data source configuration)."""


class GateFailed(RuntimeError):
    """A gate did not pass; the message lists every failing check and error."""

    def __init__(self, result: GateResult) -> None:
        super().__init__(_failure_message(result))
        self.result = result


def require_passed(result: GateResult) -> GateResult:
    """Return the result if the gate passed; raise GateFailed otherwise."""
    if not result.passed:
        raise GateFailed(result)
    return result


def contract_paths(settings: Settings, layer: str) -> list[Path]:
    """The contract files of a layer, in a stable order."""
    directory = settings.soda_dir / "contracts" / layer
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def verify_layer(settings: Settings, layer: str, run_id: str) -> GateResult:
    """Verify every contract of a layer and write its reports.

    Args:
        settings: The carehouse settings; the connection and paths derive from them.
        layer: Contract folder under ``soda/contracts`` (``gold``, ``silver``, ...).
        run_id: Pipeline run identifier; reports go to ``reports/<run_id>/<layer>.*``.

    Returns:
        The per-check results and whether the gate passed. Failing checks do not raise.

    Raises:
        GateError: The layer has no contracts, or the data source cannot be configured.
    """
    if not _SAFE_RUN_ID.match(run_id) or not _SAFE_RUN_ID.match(layer):
        raise GateError(f"run id and layer must be plain names, got {run_id!r} and {layer!r}")
    contracts = contract_paths(settings, layer)
    if not contracts:
        raise GateError(f"no contracts for layer {layer!r} in {settings.soda_dir / 'contracts'}")

    soda = _soda()
    environment = database_environment(settings)
    data_source = _data_source(soda, settings, environment)
    # Contracts name their dataset with the database from the environment (the CLI reads the
    # shell's); here it comes from the settings.
    contract_sources = [
        soda.ContractYamlSource.from_str(
            resolve_env_placeholders(path.read_text(encoding="utf-8"), environment, quote=False),
            file_path=str(path),
        )
        for path in contracts
    ]
    started_at = _now()
    session_result = soda.ContractVerificationSession.execute(
        contract_yaml_sources=contract_sources,
        data_source_impls=[data_source],
    )
    finished_at = _now()

    checks: list[CheckResult] = []
    errors: list[str] = [str(message) for message in session_result.get_errors()]
    for contract_result in session_result.contract_verification_results:
        contract = contract_result.check_collection
        dataset = str(contract.soda_qualified_dataset_name)
        local_path = getattr(contract.source, "local_file_path", None)
        contract_name = _relative(Path(local_path), settings.soda_dir) if local_path else dataset
        checks.extend(
            _check_result(contract_name, dataset, check_result)
            for check_result in contract_result.check_results
        )
        if contract_result.has_errors and not contract_result.get_errors():
            errors.append(f"{contract_name}: verification ended in error")
    if len(session_result.contract_verification_results) != len(contracts):
        errors.append(
            f"{len(contracts)} contract(s) given, "
            f"{len(session_result.contract_verification_results)} verified"
        )
    errors = list(dict.fromkeys(errors))

    passed = bool(checks) and not errors and all(c.outcome in PASSING_OUTCOMES for c in checks)
    result = GateResult(
        layer=layer,
        run_id=run_id,
        passed=passed,
        checks=tuple(checks),
        errors=tuple(errors),
        started_at=started_at,
        finished_at=finished_at,
        contracts=tuple(_relative(path, settings.soda_dir) for path in contracts),
    )
    return _write_reports(settings, result)


# ---- soda-core access ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Soda:
    ContractVerificationSession: Any
    ContractYamlSource: Any
    DataSourceYamlSource: Any
    DataSourceImpl: Any
    CheckOutcome: Any


_TELEMETRY_VARIABLE = "SODA_CORE_TELEMETRY_ENABLED"


@cache
def _soda() -> _Soda:
    # soda-core decides once, when its API package is first imported, whether to export
    # telemetry to collect.soda.io; the switch must be off before that import.
    if "soda_core.contracts" in sys.modules:
        if os.environ.get(_TELEMETRY_VARIABLE, "true").lower() not in ("false", "0", "no", "off"):
            raise GateError(
                f"soda-core was imported before {_TELEMETRY_VARIABLE}=false was set: "
                "its telemetry may be on; set the variable before starting the process"
            )
    else:
        os.environ[_TELEMETRY_VARIABLE] = TELEMETRY_OFF[_TELEMETRY_VARIABLE]
    from soda_core.common.data_source_impl import DataSourceImpl
    from soda_core.common.yaml import ContractYamlSource, DataSourceYamlSource
    from soda_core.contracts.contract_verification import (
        CheckOutcome,
        ContractVerificationSession,
    )

    # Importing the plugin registers the postgres data source type with soda-core (the CLI
    # does it through entry points).
    importlib.import_module("soda_postgres.common.data_sources.postgres_data_source")
    return _Soda(
        ContractVerificationSession=ContractVerificationSession,
        ContractYamlSource=ContractYamlSource,
        DataSourceYamlSource=DataSourceYamlSource,
        DataSourceImpl=DataSourceImpl,
        CheckOutcome=CheckOutcome,
    )


def _data_source(soda: _Soda, settings: Settings, environment: Mapping[str, str]) -> Any:
    """The data source of soda/datasource.yml, connection filled in from the settings."""
    path = settings.soda_dir / "datasource.yml"
    if not path.exists():
        raise GateError(f"no Soda data source configuration at {path}")
    # The same file serves the `soda` CLI (which reads ${env.X} from the shell); here the
    # values come from the settings, not from whatever this process's environment holds.
    text = resolve_env_placeholders(path.read_text(encoding="utf-8"), environment)
    source = soda.DataSourceYamlSource.from_str(text, file_path=str(path))
    data_source = soda.DataSourceImpl.from_yaml_source(source)
    if data_source is None:
        raise GateError(f"Soda could not read the data source configuration {path}")
    return data_source


def resolve_env_placeholders(
    text: str, environment: Mapping[str, str], *, quote: bool = True
) -> str:
    """Replace each ``${env.NAME}`` with NAME's value from ``environment``.

    Args:
        text: YAML text (a data source or contract file).
        environment: The variables to substitute.
        quote: Insert values as quoted YAML scalars (for placeholders that are a whole value,
            such as a password); otherwise insert them bare, which is allowed only for plain
            names (a database name inside a dataset's qualified name).

    Raises:
        GateError: A placeholder names an undefined variable, or a bare value is not a
            plain name.
    """
    names = {match.group(1) for match in _ENV_PLACEHOLDER.finditer(text)}
    missing = sorted(names - environment.keys())
    if missing:
        raise GateError(f"Soda configuration needs undefined variable(s): {', '.join(missing)}")
    if not quote:
        unsafe = sorted(name for name in names if not _PLAIN_NAME.match(environment[name]))
        if unsafe:
            raise GateError(f"variable(s) {', '.join(unsafe)} must be plain names here")

    def value(match: re.Match[str]) -> str:
        replacement = environment[match.group(1)]
        # A JSON string is a valid double-quoted YAML scalar: any password survives.
        return json.dumps(replacement) if quote else replacement

    return _ENV_PLACEHOLDER.sub(value, text)


def _check_result(contract: str, dataset: str, check_result: Any) -> CheckResult:
    check = check_result.check
    column = str(check.column_name) if check.column_name else None
    name = check.name or (f"{check.type} on {column}" if column else str(check.type))
    return CheckResult(
        contract=contract,
        dataset=dataset,
        check=str(name),
        check_type=str(check.type),
        column=column,
        outcome=_outcome(check_result.outcome),
        measured_value=_number(check_result.threshold_value),
        threshold=_describe_threshold(check.threshold),
        diagnostics=_diagnostics(check_result.diagnostic_metric_values),
    )


def _outcome(outcome: Any) -> Outcome:
    mapping: dict[str, Outcome] = {
        "PASSED": "pass",
        "FAILED": "fail",
        "WARN": "warn",
        "NOT_EVALUATED": "not_evaluated",
        "EXCLUDED": "excluded",
    }
    # An outcome this code does not know cannot be read as a pass.
    return mapping.get(str(getattr(outcome, "value", outcome)), "not_evaluated")


def _number(value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _describe_threshold(threshold: Any) -> str | None:
    if threshold is None:
        return None
    comparisons = (
        ("must_be", "="),
        ("must_not_be", "!="),
        ("must_be_greater_than", ">"),
        ("must_be_greater_than_or_equal", ">="),
        ("must_be_less_than", "<"),
        ("must_be_less_than_or_equal", "<="),
    )
    parts = [
        f"{symbol} {getattr(threshold, attribute)}"
        for attribute, symbol in comparisons
        if getattr(threshold, attribute, None) is not None
    ]
    return " and ".join(parts) if parts else None


def _diagnostics(values: Any) -> dict[str, float | int | str | list[str]]:
    # Diagnostics are metric values (counts, percentages) and, for schema checks, column
    # names; anything else is dropped so a report can never carry a data value.
    if not isinstance(values, Mapping):
        return {}
    kept: dict[str, float | int | str | list[str]] = {}
    for key, value in values.items():
        number = _number(value)
        if number is not None:
            kept[str(key)] = number
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            kept[str(key)] = list(value)
    return kept


# ---- reports ------------------------------------------------------------------------------


def _write_reports(settings: Settings, result: GateResult) -> GateResult:
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
        f"- contracts: {', '.join(f'`{name}`' for name in result.contracts)}",
        f"- checks: {len(result.checks)}, failing: {len(result.failed_checks)}",
        "",
        "| contract | column | check | outcome | measured | threshold |",
        "|---|---|---|---|---|---|",
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
        ]
        lines.append("| " + " | ".join(_markdown_cell(cell) for cell in cells) + " |")
    if result.errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {_markdown_cell(error)}" for error in result.errors]
    return "\n".join(lines) + "\n"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _failure_message(result: GateResult) -> str:
    lines = [f"gate {result.layer!r} failed in run {result.run_id!r}"]
    for check in result.failed_checks:
        where = f"{check.dataset}.{check.column}" if check.column else check.dataset
        measured = "" if check.measured_value is None else f", measured {check.measured_value}"
        threshold = f", expected {check.threshold}" if check.threshold else ""
        lines.append(f"  - {check.check} [{check.outcome}] on {where}{measured}{threshold}")
    lines += [f"  - error: {error}" for error in result.errors]
    if not result.checks and not result.errors:
        lines.append("  - no check was evaluated")
    return "\n".join(lines)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
