"""Publish records in ``audit.publishes``: what each publish moved into gold, and how many rows.

The gold gate's "no sudden drop" check compares the next build with the last publish's
counts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import psycopg


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
