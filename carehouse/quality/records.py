"""A gate's verification appended to ``audit.gate_runs`` and its checks to ``audit.gate_checks``.

A verification is appended, never overwritten: a run that verifies a layer twice has two
rows, in the order they happened. Counts, thresholds, column names and sample technical keys
only: never row content.
"""

from __future__ import annotations

import json

import psycopg

from carehouse.audit import schema
from carehouse.quality.results import GateResult


def record_gate_result(conn: psycopg.Connection, result: GateResult) -> int:
    """Append one verification and its checks; returns its ``gate_run_id``."""
    schema.ensure_audit_tables(conn)
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
