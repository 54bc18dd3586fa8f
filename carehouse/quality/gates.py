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
names and, for failing or warning checks, up to ``SAMPLE_KEY_LIMIT`` sample keys of the
failing rows in the key columns the contract names (``check_attributes.sample_keys``: file
and line in raw, grain keys in gold aggregates; contracts of person- or encounter-level data
name none; carehouse.quality.sample_keys). Never row content.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

from carehouse.audit.publishes import last_published_row_counts
from carehouse.core.database import connect
from carehouse.core.environment import database_environment
from carehouse.core.settings import Settings
from carehouse.quality.records import record_gate_result
from carehouse.quality.reports import write_reports
from carehouse.quality.results import (
    PASSING_OUTCOMES,
    CheckResult,
    GateError,
    GateFailed,
    GateResult,
    require_passed,
)
from carehouse.quality.soda import (
    Soda,
    check_result,
    data_source,
    load_soda,
    resolve_env_placeholders,
)

__all__ = [
    "PREVIOUS_ROW_COUNT_VARIABLE",
    "SCHEMA_VARIABLE",
    "CheckResult",
    "GateError",
    "GateFailed",
    "GateResult",
    "contract_paths",
    "declared_variables",
    "require_passed",
    "verify_layer",
]

log = logging.getLogger(__name__)

# Variables the gate fills itself (see the module docstring).
SCHEMA_VARIABLE = "schema"
PREVIOUS_ROW_COUNT_VARIABLE = "previous_row_count"

# How long a sample-key query may take.
_SAMPLE_QUERY_TIMEOUT = "30s"

_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# Soda splices variable values into SQL text: only values that cannot break out of a quoted
# literal or an identifier are accepted (load ids, drain ids, schema names, counts).
_SAFE_VARIABLE_VALUE = re.compile(r"^[A-Za-z0-9_.:+-]*$")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Postgres data errors quote the offending value ('invalid input syntax for type date:
# "2026-02-30"'); a report must not carry it.
_QUOTED_VALUE_AFTER_COLON = re.compile(r':\s*"[^"]*"')
_KEY_DETAIL = re.compile(r"Key \(([^)]*)\)=\([^)]*\)")


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

    soda = load_soda()
    environment = database_environment(settings)
    source = data_source(soda, settings, environment)
    checks: list[CheckResult] = []
    errors: list[str] = []
    started_at = _now()
    with connect(settings, "transformer", autocommit=True) as conn:
        conn.execute(
            sql.SQL("set statement_timeout = {}").format(sql.Literal(_SAMPLE_QUERY_TIMEOUT))
        )
        wants_previous = any(PREVIOUS_ROW_COUNT_VARIABLE in names for names in declared.values())
        previous = last_published_row_counts(conn) if wants_previous else {}
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
                    soda, source, settings, path, environment, contract_variables, conn, schema
                )
                checks.extend(contract_checks)
                errors.extend(contract_errors)
        finally:
            if source.has_open_connection():
                source.close_connection()
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
        result = write_reports(settings, result)
        record_gate_result(conn, result)
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
    soda: Soda,
    source: Any,
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
    contract_source = soda.ContractYamlSource.from_str(
        resolve_env_placeholders(path.read_text(encoding="utf-8"), environment, quote=False),
        file_path=str(path),
    )
    session_result = soda.ContractVerificationSession.execute(
        contract_yaml_sources=[contract_source],
        data_source_impls=[source],
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
            check_result(name, dataset, prefix, str(contract.dataset_name), soda_result, conn)
            for soda_result in contract_result.check_results
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


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
