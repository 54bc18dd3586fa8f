"""soda-core in this process, telemetry off; its results read into carehouse's own types.

The data source is configured from the settings (not from the shell), and each Soda check
result becomes a :class:`~carehouse.quality.results.CheckResult`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import psycopg

from carehouse.core.environment import TELEMETRY_OFF
from carehouse.core.settings import Settings
from carehouse.quality.results import CheckResult, GateError, Outcome
from carehouse.quality.sample_keys import sample_keys

_ENV_PLACEHOLDER = re.compile(r"\$\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.$-]*$")


@dataclass(frozen=True)
class Soda:
    """The soda-core API, imported once telemetry is off."""

    ContractVerificationSession: Any
    ContractYamlSource: Any
    DataSourceYamlSource: Any
    DataSourceImpl: Any
    CheckOutcome: Any


_TELEMETRY_VARIABLE = "SODA_CORE_TELEMETRY_ENABLED"


@cache
def load_soda() -> Soda:
    """soda-core's API and its Postgres plugin, imported with telemetry off (once)."""
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
    return Soda(
        ContractVerificationSession=ContractVerificationSession,
        ContractYamlSource=ContractYamlSource,
        DataSourceYamlSource=DataSourceYamlSource,
        DataSourceImpl=DataSourceImpl,
        CheckOutcome=CheckOutcome,
    )


def data_source(soda: Soda, settings: Settings, environment: Mapping[str, str]) -> Any:
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


def check_result(
    contract: str,
    dataset: str,
    prefix: Sequence[str],
    table: str,
    soda_result: Any,
    conn: psycopg.Connection,
) -> CheckResult:
    """One Soda check result of ``contract`` on ``dataset`` as carehouse's, with sample keys."""
    check = soda_result.check
    column = str(check.column_name) if check.column_name else None
    name = check.name or (f"{check.type} on {column}" if column else str(check.type))
    outcome = _outcome(soda_result.outcome)
    diagnostics = _diagnostics(soda_result.diagnostic_metric_values)
    diagnostics.update(_schema_diagnostics(soda_result))
    fail_threshold, warn_threshold = check.threshold, getattr(check, "warn_threshold", None)
    if fail_threshold is not None and str(fail_threshold.level).lower() == "warn":
        # A check with only a warn-level threshold carries it as its threshold.
        fail_threshold, warn_threshold = None, fail_threshold
    samples: tuple[str, ...] = ()
    if outcome in ("fail", "warn") and prefix:
        samples, problem = sample_keys(conn, prefix[-1], table, check)
        if problem is not None:
            diagnostics["sample_keys_unavailable"] = problem
    return CheckResult(
        contract=contract,
        dataset=dataset,
        check=str(name),
        check_type=str(check.type),
        column=column,
        outcome=outcome,
        measured_value=_number(soda_result.threshold_value),
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
