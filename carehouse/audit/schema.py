"""The tables of the `audit` schema, defined once: gate checks, publishes, pipeline runs.

Created on first use by the transformer (which owns the schema):

- ``audit.gate_runs``: one row per verified layer per pipeline run (pass or fail, counts);
- ``audit.gate_checks``: one row per check of that verification, with the measured value,
  the threshold and diagnostics (counts, column names, sample technical keys: never row
  content);
- ``audit.publishes``: one row per publish of ``gold_next`` into ``gold``, with the row count
  of every table published. The gold gate's "no sudden drop" check reads the counts of the
  last publish from here;
- ``audit.pipeline_runs``: one row per pipeline run (carehouse.audit.runs), read by
  ``gold.pipeline_run_audit``. dbt's on-run-start hook creates it too
  (``create_audit_tables()`` in ``dbt/macros/hooks/audit.sql``), so that a ``dbt build`` by
  hand finds its source; ``tests/audit/test_schema.py`` asserts both definitions agree.

A verification is appended, never overwritten: a run that verifies a layer twice has two
rows, in the order they happened.
"""

from __future__ import annotations

from typing import LiteralString

import psycopg

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
    'One row per quality-gate verification of one layer in one pipeline run'
    ' (carehouse.quality.gates).'
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
    'One row per publish of gold_next into gold (carehouse.warehouse.publish): the tables and views'
    ' published and their row counts.'
    """,
)


PIPELINE_RUNS_DDL: tuple[LiteralString, ...] = (
    """
    create table if not exists audit.pipeline_runs (
        run_id text primary key,
        business_date date not null,
        started_at timestamptz not null,
        finished_at timestamptz,
        status text not null,
        source_rows jsonb not null default '{}'::jsonb,
        gate_outcomes jsonb not null default '{}'::jsonb,
        step_durations jsonb not null default '{}'::jsonb,
        gold_freshness jsonb not null default '{}'::jsonb,
        recorded_at timestamptz not null default now()
    )
    """,
    "alter table audit.pipeline_runs add column if not exists failed_step text",
)


def ensure_audit_tables(conn: psycopg.Connection) -> None:
    """Create the gate and publish tables in ``audit`` when missing (as the transformer)."""
    _create(conn, _DDL)


def ensure_pipeline_runs(conn: psycopg.Connection) -> None:
    """Create ``audit.pipeline_runs`` when missing (as the transformer)."""
    _create(conn, PIPELINE_RUNS_DDL)


def _create(conn: psycopg.Connection, statements: tuple[LiteralString, ...]) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (_DDL_LOCK,))
        for statement in statements:
            conn.execute(statement)
