"""Quality gates: verify a layer's Soda data contracts, report every check, record it.

A gate verifies every contract in ``soda/contracts/<layer>/`` (not its subfolders: contracts
waiting for their model live in ``pending/``) in-process with soda-core, one contract at a
time, writes a JSON and a Markdown report under ``reports/<run_id>/``, appends the result to
``audit.gate_runs`` and ``audit.gate_checks``, and returns it. It never retries and never raises
because checks failed: the caller decides, usually with :func:`require_passed`. A check is a
warning only where its contract declares a ``level: warn`` threshold; anything Soda could not
evaluate fails the gate.

Contract variables (``${var.NAME}``, declared in the contract's ``variables:``) come from
three places, the caller's winning: ``schema`` when the gate verifies another schema than the
contracts' default (gold contracts name theirs ``${var.schema}``, so the gate can verify
``gold_next`` before it is published); ``previous_row_count`` for contracts that declare it,
the row count of the contract's table (its file name) at the last publish; and the caller's
``variables`` (load ids of the current load for the raw contracts).

Reports and audit rows hold check names, thresholds, measured values (counts, rates), column
names and, for failing or warning checks, up to :data:`SAMPLE_KEY_LIMIT` sample keys of the
failing rows in the key columns the contract names (``check_attributes.sample_keys``: file
and line in raw, grain keys in gold aggregates; contracts of person- or encounter-level data
name none). Never row content.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

import psycopg
import yaml
from psycopg import sql

from carehouse import audit
from carehouse.database import connect
from carehouse.environment import TELEMETRY_OFF, database_environment
from carehouse.settings import Settings

log = logging.getLogger(__name__)

Outcome = Literal["pass", "fail", "warn", "not_evaluated", "excluded"]

# Outcomes that let a gate pass; anything else (fail, or a check that could not run) stops it.
# A warning passes only because its contract declared that threshold `level: warn`.
PASSING_OUTCOMES: frozenset[str] = frozenset({"pass", "warn", "excluded"})

# Variables the gate fills itself (see the module docstring).
SCHEMA_VARIABLE = "schema"
PREVIOUS_ROW_COUNT_VARIABLE = "previous_row_count"

# Sample keys reported per failing check, and how long their query may take.
SAMPLE_KEY_LIMIT = 5
_SAMPLE_QUERY_TIMEOUT = "30s"

_ENV_PLACEHOLDER = re.compile(r"\$\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.$-]*$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# Soda splices variable values into SQL text: only values that cannot break out of a quoted
# literal or an identifier are accepted (load ids, drain ids, schema names, counts).
_SAFE_VARIABLE_VALUE = re.compile(r"^[A-Za-z0-9_.:+-]*$")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Postgres data errors quote the offending value ('invalid input syntax for type date:
# "2026-02-30"'); a report must not carry it.
_QUOTED_VALUE_AFTER_COLON = re.compile(r':\s*"[^"]*"')
_KEY_DETAIL = re.compile(r"Key \(([^)]*)\)=\([^)]*\)")


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
        super().__init__(_failure_message(result))
        self.result = result


def require_passed(result: GateResult) -> GateResult:
    """Return the result if the gate passed; raise GateFailed otherwise."""
    if not result.passed:
        raise GateFailed(result)
    return result


def contract_paths(settings: Settings, layer: str) -> list[Path]:
    """The contract files of a layer, in a stable order (subfolders such as pending/ excluded)."""
    directory = settings.soda_dir / "contracts" / layer
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def verify_layer(
    settings: Settings,
    layer: str,
    run_id: str,
    *,
    schema: str | None = None,
    variables: Mapping[str, str | int] | None = None,
) -> GateResult:
    """Verify every contract of a layer, write its reports and its audit rows.

    Args:
        settings: The carehouse settings; the connection and paths derive from them.
        layer: Contract folder under ``soda/contracts`` (``raw``, ``silver``, ``gold``).
        run_id: Pipeline run identifier; reports go to ``reports/<run_id>/<layer>.*``.
        schema: Verify this schema instead of the contracts' default, e.g. ``gold_next``.
            Every contract of the layer must name its schema ``${var.schema}``.
        variables: Contract variables for every contract of the layer, e.g.
            ``{"admissions_load_id": "1742437200.1234"}``; a contract uses those it declares.

    Returns:
        The per-check results and whether the gate passed. Failing checks do not raise.

    Raises:
        GateError: The layer has no contracts, a variable value is unsafe, a contract cannot
            take the schema, or the data source cannot be configured.
    """
    if not _SAFE_RUN_ID.match(run_id) or not _SAFE_RUN_ID.match(layer):
        raise GateError(f"run id and layer must be plain names, got {run_id!r} and {layer!r}")
    if schema is not None and not _IDENTIFIER.match(schema):
        raise GateError(f"schema must be a plain lower-case name, got {schema!r}")
    given = _checked_variables(variables or {})
    if SCHEMA_VARIABLE in given:
        # Through `schema=` the gate also checks that every contract verified that schema.
        raise GateError(
            f"pass the schema to verify as schema=, not as variable {SCHEMA_VARIABLE!r}"
        )
    contracts = contract_paths(settings, layer)
    if not contracts:
        raise GateError(f"no contracts for layer {layer!r} in {settings.soda_dir / 'contracts'}")
    declared = {path: declared_variables(path) for path in contracts}
    if schema is not None:
        fixed = [path.name for path, names in declared.items() if SCHEMA_VARIABLE not in names]
        if fixed:
            raise GateError(
                f"cannot verify schema {schema!r}: these {layer} contracts do not declare the"
                f" variable {SCHEMA_VARIABLE!r} and would verify their own schema instead: "
                + ", ".join(fixed)
            )

    soda = _soda()
    environment = database_environment(settings)
    data_source = _data_source(soda, settings, environment)
    checks: list[CheckResult] = []
    errors: list[str] = []
    started_at = _now()
    with connect(settings, "transformer", autocommit=True) as conn:
        conn.execute(
            sql.SQL("set statement_timeout = {}").format(sql.Literal(_SAMPLE_QUERY_TIMEOUT))
        )
        wants_previous = any(PREVIOUS_ROW_COUNT_VARIABLE in names for names in declared.values())
        previous = audit.last_published_row_counts(conn) if wants_previous else {}
        try:
            for path in contracts:
                contract_variables: dict[str, str] = {}
                if schema is not None:
                    contract_variables[SCHEMA_VARIABLE] = schema
                if PREVIOUS_ROW_COUNT_VARIABLE in declared[path]:
                    # First publish, or a table new since the last one: 0 turns the check off.
                    contract_variables[PREVIOUS_ROW_COUNT_VARIABLE] = str(
                        previous.get(path.stem, 0)
                    )
                contract_variables.update(given)
                contract_checks, contract_errors = _verify_contract(
                    soda, data_source, settings, path, environment, contract_variables, conn, schema
                )
                checks.extend(contract_checks)
                errors.extend(contract_errors)
        finally:
            if data_source.has_open_connection():
                data_source.close_connection()
        finished_at = _now()
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
            schema=schema,
            variables=given,
        )
        result = _write_reports(settings, result)
        audit.record_gate_result(conn, result)
    log.info("gate %s", result.one_line())
    return result


def declared_variables(path: Path) -> frozenset[str]:
    """The variable names a contract file declares under ``variables:``."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise GateError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(document, dict):
        raise GateError(f"{path} is not a Soda contract (a YAML mapping)")
    variables = document.get("variables") or {}
    if not isinstance(variables, dict):
        raise GateError(f"{path}: 'variables' must be a mapping")
    return frozenset(str(name) for name in variables)


def _checked_variables(variables: Mapping[str, str | int]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in variables.items():
        text = str(value)
        if not _VARIABLE_NAME.match(name) or not _SAFE_VARIABLE_VALUE.match(text):
            raise GateError(
                f"contract variable {name!r} must be a name with a value of letters, digits and"
                " . _ : + - only (Soda splices it into SQL)"
            )
        checked[name] = text
    return checked


def _verify_contract(
    soda: _Soda,
    data_source: Any,
    settings: Settings,
    path: Path,
    environment: Mapping[str, str],
    variables: Mapping[str, str],
    conn: psycopg.Connection,
    schema: str | None,
) -> tuple[list[CheckResult], list[str]]:
    """Verify one contract (its own session: variables such as the previous count differ)."""
    name = _relative(path, settings.soda_dir)
    # Contracts name their dataset with the database from the environment (the CLI reads the
    # shell's); here it comes from the settings.
    source = soda.ContractYamlSource.from_str(
        resolve_env_placeholders(path.read_text(encoding="utf-8"), environment, quote=False),
        file_path=str(path),
    )
    session_result = soda.ContractVerificationSession.execute(
        contract_yaml_sources=[source],
        data_source_impls=[data_source],
        variables=dict(variables),
    )
    errors = [f"{name}: {_scrub(str(message))}" for message in session_result.get_errors()]
    checks: list[CheckResult] = []
    results = session_result.contract_verification_results
    for contract_result in results:
        contract = contract_result.check_collection
        dataset = str(contract.soda_qualified_dataset_name)
        prefix = [str(part) for part in (contract.dataset_prefix or [])]
        if schema is not None and (not prefix or prefix[-1] != schema):
            errors.append(f"{name}: verified {dataset}, not a table of schema {schema!r}")
        checks.extend(
            _check_result(name, dataset, prefix, str(contract.dataset_name), check_result, conn)
            for check_result in contract_result.check_results
        )
        if contract_result.has_errors and not contract_result.get_errors():
            errors.append(f"{name}: verification ended in error")
    if len(results) != 1:
        errors.append(f"{name}: {len(results)} contract results for one contract file")
    return checks, errors


def _scrub(message: str) -> str:
    """A Soda or Postgres error message without the data values Postgres quotes in it."""
    message = _QUOTED_VALUE_AFTER_COLON.sub(': "…"', message)
    return _KEY_DETAIL.sub(r"Key (\1)=(…)", message)


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


def _check_result(
    contract: str,
    dataset: str,
    prefix: Sequence[str],
    table: str,
    check_result: Any,
    conn: psycopg.Connection,
) -> CheckResult:
    check = check_result.check
    column = str(check.column_name) if check.column_name else None
    name = check.name or (f"{check.type} on {column}" if column else str(check.type))
    outcome = _outcome(check_result.outcome)
    diagnostics = _diagnostics(check_result.diagnostic_metric_values)
    diagnostics.update(_schema_diagnostics(check_result))
    fail_threshold, warn_threshold = check.threshold, getattr(check, "warn_threshold", None)
    if fail_threshold is not None and str(fail_threshold.level).lower() == "warn":
        # A check with only a warn-level threshold carries it as its threshold.
        fail_threshold, warn_threshold = None, fail_threshold
    samples: tuple[str, ...] = ()
    if outcome in ("fail", "warn") and prefix:
        samples, problem = _sample_keys(conn, prefix[-1], table, check)
        if problem is not None:
            diagnostics["sample_keys_unavailable"] = problem
    return CheckResult(
        contract=contract,
        dataset=dataset,
        check=str(name),
        check_type=str(check.type),
        column=column,
        outcome=outcome,
        measured_value=_number(check_result.threshold_value),
        threshold=_describe_threshold(fail_threshold),
        diagnostics=diagnostics,
        warn_threshold=_describe_threshold(warn_threshold),
        sample_keys=samples,
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
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        # Metric queries answer numeric; a report wants a plain number.
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if not isinstance(value, int | float):
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


def _schema_diagnostics(check_result: Any) -> dict[str, float | int | str | list[str]]:
    """Which columns a schema check missed, did not expect, or found of another type."""
    found: dict[str, float | int | str | list[str]] = {}
    missing = getattr(check_result, "expected_column_names_not_actual", None)
    unexpected = getattr(check_result, "actual_column_names_not_expected", None)
    mismatches = getattr(check_result, "column_data_type_mismatches", None)
    if missing:
        found["missing_columns"] = sorted(str(name) for name in missing)
    if unexpected:
        found["unexpected_columns"] = sorted(str(name) for name in unexpected)
    if mismatches:
        found["type_mismatches"] = sorted(
            f"{m.column}: expected {m.expected_data_type}, found {m.actual_data_type}"
            for m in mismatches
        )
    return found


# ---- sample keys of failing rows ----------------------------------------------------------


def _sample_keys(
    conn: psycopg.Connection, schema: str, table: str, check: Any
) -> tuple[tuple[str, ...], str | None]:
    """Up to SAMPLE_KEY_LIMIT failing rows, named by the contract's sample key columns.

    Soda reports counts only, so the failing rows are selected here again from the check's
    resolved definition. Only check kinds whose failing rows are a row predicate get samples
    (missing, invalid, duplicate, failed_rows with an expression); others (schema, row count,
    freshness, metric) have no failing row. Returns the samples, or why there are none when
    the query failed (the reason is an error class and SQLSTATE, never a message that could
    quote a value).
    """
    key_columns = _sample_key_columns(getattr(check, "attributes", None))
    if not key_columns:
        return (), None
    try:
        definition = yaml.safe_load(str(check.definition or ""))
    except yaml.YAMLError:
        return (), "check definition unreadable"
    predicate = _failing_rows_predicate(str(check.type), definition, schema, table)
    if predicate is None:
        return (), None
    keys = sql.SQL(", ").join(sql.Identifier(column) for column in key_columns)
    query = sql.SQL(
        "select distinct {keys} from {table} where {predicate} order by {keys} limit {limit}"
    ).format(
        keys=keys,
        table=sql.Identifier(schema, table),
        predicate=predicate,
        limit=sql.Literal(SAMPLE_KEY_LIMIT),
    )
    try:
        rows = conn.execute(query).fetchall()
    except psycopg.Error as err:
        # The verdict stands without samples; the report says why they are missing.
        log.warning("sample keys of %s.%s unavailable: %s", schema, table, type(err).__name__)
        return (), f"{type(err).__name__} ({err.sqlstate or 'no sqlstate'})"
    return tuple(
        ", ".join(
            f"{column}={_key_text(value)}" for column, value in zip(key_columns, row, strict=True)
        )
        for row in rows
    ), None


def _sample_key_columns(attributes: Any) -> tuple[str, ...]:
    if not isinstance(attributes, Mapping):
        return ()
    columns = attributes.get("sample_keys")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        return ()
    return tuple(columns)


def _key_text(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _failing_rows_predicate(
    check_type: str, definition: Any, schema: str, table: str
) -> sql.Composable | None:
    """The rows a check counts as failing, as SQL, or None when there is no such predicate."""
    if not isinstance(definition, dict):
        return None
    contract_filter = definition.get("filter")
    column: str | None = None
    body: Any = None
    if isinstance(definition.get("columns"), list) and definition["columns"]:
        column_yaml = definition["columns"][0]
        if isinstance(column_yaml, dict) and isinstance(column_yaml.get("checks"), list):
            column = str(column_yaml.get("name"))
            body = column_yaml["checks"][0]
    elif isinstance(definition.get("checks"), list) and definition["checks"]:
        body = definition["checks"][0]
    if not isinstance(body, dict) or body.get("column_expression"):
        return None

    condition: sql.Composable | None = None
    if check_type == "missing" and column:
        condition = _is_missing(sql.Identifier(column), body)
    elif check_type == "invalid" and column:
        invalid = _is_invalid(sql.Identifier(column), body)
        if invalid is not None:
            condition = sql.SQL("not ({missing}) and ({invalid})").format(
                missing=_is_missing(sql.Identifier(column), body), invalid=invalid
            )
    elif check_type == "duplicate":
        columns = [column] if column else body.get("columns")
        if isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns):
            condition = _is_duplicate(columns, schema, table, contract_filter, body.get("filter"))
    elif check_type == "failed_rows" and isinstance(body.get("expression"), str):
        condition = _contract_sql(body["expression"])
    if condition is None:
        return None
    # Filters and expressions are SQL written in the contract, which Soda runs as such too.
    parts = [_contract_sql(f) for f in (contract_filter, body.get("filter")) if isinstance(f, str)]
    return sql.SQL(" and ").join(sql.SQL("({})").format(part) for part in [*parts, condition])


def _contract_sql(text: str) -> sql.SQL:
    """SQL text written in a contract (a filter, an expression), which Soda runs verbatim too.

    Contracts are reviewed code in the repository, like dbt models; their variables were
    checked by :func:`_checked_variables` before Soda spliced them in.
    """
    return sql.SQL(text)


def _is_missing(column: sql.Identifier, body: Mapping[str, Any]) -> sql.Composable:
    clauses: list[sql.Composable] = [sql.SQL("{} is null").format(column)]
    values = body.get("missing_values")
    if isinstance(values, list) and values:
        clauses.append(_in(column, values))
    regex = _regex(body.get("missing_format"))
    if regex is not None:
        clauses.append(sql.SQL("{} ~ {}").format(column, sql.Literal(regex)))
    return sql.SQL(" or ").join(clauses)


def _is_invalid(column: sql.Identifier, body: Mapping[str, Any]) -> sql.Composable | None:
    clauses: list[sql.Composable] = []
    valid_values = body.get("valid_values")
    if isinstance(valid_values, list):
        listed = [value for value in valid_values if value is not None]
        clauses.append(
            sql.SQL("not ({})").format(_in(column, listed)) if listed else sql.SQL("true")
        )
    invalid_values = body.get("invalid_values")
    if isinstance(invalid_values, list) and invalid_values:
        clauses.append(_in(column, [value for value in invalid_values if value is not None]))
    for key, operator in (("valid_min", "<"), ("valid_max", ">")):
        if isinstance(body.get(key), int | float | str):
            clauses.append(
                sql.SQL("{} {} {}").format(column, sql.SQL(operator), sql.Literal(body[key]))
            )
    for key, operator in (
        ("valid_length", "<>"),
        ("valid_min_length", "<"),
        ("valid_max_length", ">"),
    ):
        if isinstance(body.get(key), int):
            clauses.append(
                sql.SQL("length({}) {} {}").format(
                    column, sql.SQL(operator), sql.Literal(body[key])
                )
            )
    valid_regex = _regex(body.get("valid_format"))
    if valid_regex is not None:
        clauses.append(sql.SQL("not ({} ~ {})").format(column, sql.Literal(valid_regex)))
    invalid_regex = _regex(body.get("invalid_format"))
    if invalid_regex is not None:
        clauses.append(sql.SQL("{} ~ {}").format(column, sql.Literal(invalid_regex)))
    reference = body.get("valid_reference_data")
    if isinstance(reference, dict):
        referenced = _reference(reference)
        if referenced is None:
            return None
        ref_table, ref_column = referenced
        clauses.append(
            sql.SQL("{column} not in (select {ref} from {table} where {ref} is not null)").format(
                column=column, ref=ref_column, table=ref_table
            )
        )
    return sql.SQL(" or ").join(clauses) if clauses else None


def _is_duplicate(
    columns: list[str], schema: str, table: str, contract_filter: Any, check_filter: Any
) -> sql.Composable:
    keys = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    filters = [_contract_sql(f) for f in (contract_filter, check_filter) if isinstance(f, str)]
    where = (
        sql.SQL(" where ") + sql.SQL(" and ").join(sql.SQL("({})").format(f) for f in filters)
        if filters
        else sql.SQL("")
    )
    return sql.SQL(
        "({keys}) in (select {keys} from {table}{where} group by {keys} having count(*) > 1)"
    ).format(keys=keys, table=sql.Identifier(schema, table), where=where)


def _in(column: sql.Identifier, values: Sequence[object]) -> sql.Composable:
    return sql.SQL("{} in ({})").format(
        column, sql.SQL(", ").join(sql.Literal(value) for value in values)
    )


def _regex(format_yaml: Any) -> str | None:
    if isinstance(format_yaml, dict) and isinstance(format_yaml.get("regex"), str):
        return str(format_yaml["regex"])
    return None


def _reference(reference: Mapping[str, Any]) -> tuple[sql.Identifier, sql.Identifier] | None:
    """The table and column of a ``valid_reference_data`` (``source/database/schema/table``)."""
    dataset, column = reference.get("dataset"), reference.get("column")
    if not isinstance(dataset, str) or not isinstance(column, str):
        return None
    parts = dataset.split("/")
    if len(parts) < 3:
        return None
    return sql.Identifier(parts[-2], parts[-1]), sql.Identifier(column)


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
            lines += [f"- {_markdown_cell(_describe_check(check))}" for check in selected]
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


def _describe_check(check: CheckResult) -> str:
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


def _failure_message(result: GateResult) -> str:
    where = f" (schema {result.schema})" if result.schema else ""
    lines = [f"gate {result.layer!r}{where} failed in run {result.run_id!r}"]
    lines += [f"  - {_describe_check(check)}" for check in result.failed_checks]
    lines += [f"  - error: {error}" for error in result.errors]
    if not result.checks and not result.errors:
        lines.append("  - no check was evaluated")
    if result.report_markdown is not None:
        lines.append(f"  report: {result.report_markdown}")
    return "\n".join(lines)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
