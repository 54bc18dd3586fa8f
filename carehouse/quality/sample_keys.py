"""Sample keys of a failing check's rows: which rows to look at, never what they hold.

Soda reports counts only, so the failing rows are selected here again from the check's
resolved definition, named by the key columns the contract lists under
``check_attributes.sample_keys`` (file and line in raw, grain keys in gold aggregates;
contracts of person- or encounter-level data name none).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import psycopg
import yaml
from psycopg import sql

log = logging.getLogger(__name__)

# Sample keys reported per failing check.
SAMPLE_KEY_LIMIT = 5


def sample_keys(
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
