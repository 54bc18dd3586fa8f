"""The `audit` schema's gate and publish records: what each gate checked and what gold holds.

Three tables, created on first use by the transformer (which owns the schema):

- ``audit.gate_runs``: one row per verified layer per pipeline run (pass or fail, counts);
- ``audit.gate_checks``: one row per check of that verification, with the measured value,
  the threshold and diagnostics (counts, column names, sample technical keys: never row
  content);
- ``audit.publishes``: one row per publish of ``gold_next`` into ``gold``, with the row count
  of every table published. The gold gate's "no sudden drop" check reads the counts of the
  last publish from here.

A verification is appended, never overwritten: a run that verifies a layer twice has two
rows, in the order they happened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, LiteralString

import psycopg

if TYPE_CHECKING:
    from carehouse.gates import GateResult

AUDIT_SCHEMA = "audit"
GATE_RUNS = "gate_runs"
GATE_CHECKS = "gate_checks"
PUBLISHES = "publishes"

# Concurrent first runs would race on `create table if not exists` (it is not atomic against
# a parallel creator): the creation runs under this transaction-level advisory lock.
_DDL_LOCK = "carehouse.audit.ddl"

_DDL: tuple[LiteralString, ...] = (
    """
    create table if not exists audit.gate_runs (
        gate_run_id bigint generated always as identity primary key,
        run_id text not null,
        layer text not null,
        verified_schema text,
        passed boolean not null,
        started_at timestamptz not null,
        finished_at timestamptz not null,
        contracts text[] not null,
        checks integer not null,
        failed integer not null,
        warned integer not null,
        errors text[] not null,
        report_json text,
        report_markdown text,
        recorded_at timestamptz not null default now()
    )
    """,
    "create index if not exists gate_runs_run_id_layer_idx on audit.gate_runs (run_id, layer)",
    """
    comment on table audit.gate_runs is
    'One row per quality-gate verification of one layer in one pipeline run (carehouse.gates).'
    """,
    """
    create table if not exists audit.gate_checks (
        gate_run_id bigint not null references audit.gate_runs (gate_run_id) on delete cascade,
        run_id text not null,
        layer text not null,
        contract text not null,
        dataset text not null,
        check_name text not null,
        check_type text not null,
        column_name text,
        outcome text not null,
        measured_value numeric,
        threshold text,
        diagnostics jsonb not null default '{}'::jsonb
    )
    """,
    "create index if not exists gate_checks_gate_run_id_idx on audit.gate_checks (gate_run_id)",
    """
    comment on table audit.gate_checks is
    'One row per check of a gate verification: outcome, measured value, threshold and'
    ' diagnostics (counts, column names, sample technical keys; never row content).'
    """,
    """
    create table if not exists audit.publishes (
        publish_id bigint generated always as identity primary key,
        run_id text not null,
        published_at timestamptz not null default now(),
        tables text[] not null,
        row_counts jsonb not null
    )
    """,
    """
    comment on table audit.publishes is
    'One row per publish of gold_next into gold (carehouse.publish): the tables and views'
    ' published and their row counts.'
    """,
)


def ensure_audit_tables(conn: psycopg.Connection) -> None:
    """Create the gate and publish tables in ``audit`` when missing (as the transformer)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (_DDL_LOCK,))
        for statement in _DDL:
            conn.execute(statement)


def record_gate_result(conn: psycopg.Connection, result: GateResult) -> int:
    """Append one verification and its checks; returns its ``gate_run_id``."""
    ensure_audit_tables(conn)
    with conn.transaction():
        row = conn.execute(
            """
            insert into audit.gate_runs (
                run_id, layer, verified_schema, passed, started_at, finished_at, contracts,
                checks, failed, warned, errors, report_json, report_markdown
            )
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            returning gate_run_id
            """,
            (
                result.run_id,
                result.layer,
                result.schema,
                result.passed,
                result.started_at,
                result.finished_at,
                list(result.contracts),
                len(result.checks),
                len(result.failed_checks),
                len(result.warned_checks),
                list(result.errors),
                str(result.report_json) if result.report_json else None,
                str(result.report_markdown) if result.report_markdown else None,
            ),
        ).fetchone()
        assert row is not None
        gate_run_id = int(row[0])
        with conn.cursor() as cursor:
            cursor.executemany(
                """
                insert into audit.gate_checks (
                    gate_run_id, run_id, layer, contract, dataset, check_name, check_type,
                    column_name, outcome, measured_value, threshold, diagnostics
                )
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
                """,
                [
                    (
                        gate_run_id,
                        result.run_id,
                        result.layer,
                        check.contract,
                        check.dataset,
                        check.check,
                        check.check_type,
                        check.column,
                        check.outcome,
                        check.measured_value,
                        check.threshold,
                        json.dumps(
                            {**check.diagnostics, "sample_keys": list(check.sample_keys)}
                            if check.sample_keys
                            else check.diagnostics
                        ),
                    )
                    for check in result.checks
                ],
            )
    return gate_run_id


def record_publish(
    conn: psycopg.Connection, run_id: str, tables: Sequence[str], row_counts: Mapping[str, int]
) -> None:
    """Append one publish; call inside the publishing transaction so both commit together."""
    conn.execute(
        "insert into audit.publishes (run_id, tables, row_counts) values (%s, %s, %s::jsonb)",
        (run_id, list(tables), json.dumps(dict(row_counts), sort_keys=True)),
    )


def last_published_row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Row count per table at the last publish; empty before the first one."""
    exists = conn.execute("select to_regclass('audit.publishes') is not null").fetchone()
    if not exists or not exists[0]:
        return {}
    row = conn.execute(
        "select row_counts from audit.publishes order by published_at desc, publish_id desc limit 1"
    ).fetchone()
    if row is None:
        return {}
    counts: dict[str, object] = row[0]
    return {str(table): int(str(count)) for table, count in counts.items()}
