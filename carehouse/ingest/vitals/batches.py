"""One micro-batch, one transaction: raw rows, dead letters and the partitions' next offsets.

A crash at any instant either committed a batch with its offsets or did neither. Zombies are
fenced: the offset update applies only where the database still holds the offset the batch
started from, and the whole batch rolls back when another worker got there first.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql

from carehouse.ingest.vitals.errors import Fenced, SlowBatch
from carehouse.ingest.vitals.messages import (
    DEAD_LETTER_COPY_COLUMNS,
    RAW_COPY_COLUMNS,
    RenderedBatch,
    copy_unescape,
)
from carehouse.ingest.vitals.settings import DRAIN_GROUP, REJECTED_BY_DATABASE
from carehouse.ingest.vitals.tables import dead_letter_table, offsets_table, raw_table


def write_batch(
    conn: psycopg.Connection,
    batch: RenderedBatch,
    topic: str,
    group: str = DRAIN_GROUP,
    *,
    max_open_seconds: float | None = None,
) -> int:
    """Commit a batch's rows, dead letters and offsets in one transaction.

    Returns the rows Postgres rejected that were dead-lettered instead (normally 0).
    Raises Fenced, having rolled everything back, when a partition's offset in the
    database is no longer the one the batch started from, and SlowBatch, rolled back too,
    when the transaction has been open longer than ``max_open_seconds`` (by the server's
    clock, the one ``_ingested_at`` comes from) just before its commit.
    """
    partitions = sorted(batch.end_offsets)
    try:
        with conn.transaction():
            cursor = conn.execute(
                sql.SQL(
                    "update {offsets} as o set next_offset = n.end_offset, updated_at = now()"
                    " from unnest(%s::integer[], %s::bigint[], %s::bigint[])"
                    " as n(partition, start_offset, end_offset)"
                    " where o.consumer_group = %s and o.topic = %s"
                    " and o.partition = n.partition and o.next_offset = n.start_offset"
                ).format(offsets=offsets_table()),
                (
                    partitions,
                    [batch.start_offsets[p] for p in partitions],
                    [batch.end_offsets[p] for p in partitions],
                    group,
                    topic,
                ),
            )
            if cursor.rowcount != len(partitions):
                raise Fenced(f"{len(partitions) - cursor.rowcount} partitions moved on")
            dead = batch.dead_data
            rejected = _copy_salvaging(conn, batch.raw_data)
            if rejected:
                dead += b"".join(rejected)
                batch.reject([row.split(b"\t")[5].decode() for row in rejected])
            if dead:
                _copy(conn, dead_letter_table(), DEAD_LETTER_COPY_COLUMNS, dead)
            if max_open_seconds is not None:
                _check_open_seconds(conn, max_open_seconds)
    except psycopg.errors.DeadlockDetected as err:
        # Two workers updating the same partitions in different orders: a fence too.
        raise Fenced("deadlock with another worker") from err
    return len(rejected)


def _check_open_seconds(conn: psycopg.Connection, limit: float) -> None:
    row = conn.execute("select extract(epoch from clock_timestamp() - now())::float8").fetchone()
    open_seconds = float(row[0]) if row else 0.0
    if open_seconds > limit:
        raise SlowBatch(
            f"a batch transaction was open {open_seconds:.1f}s, over {limit:.0f}s"
            " (half of vitals_lookback_seconds): rolled back, to be drained again"
        )


def _copy(
    conn: psycopg.Connection, table: sql.Composable, columns: Sequence[str], data: bytes
) -> None:
    statement = sql.SQL("copy {} ({}) from stdin").format(
        table, sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(memoryview(data))


def _copy_salvaging(conn: psycopg.Connection, data: bytes) -> list[bytes]:
    """COPY raw rows; rows Postgres rejects become dead-letter rows (returned).

    The checks before should leave nothing for Postgres to reject; if a row slips
    through anyway, halving the batch under savepoints finds it, so one bad row
    can never stall the drain.
    """
    if not data:
        return []
    try:
        with conn.transaction():
            _copy(conn, raw_table(), RAW_COPY_COLUMNS, data)
    except psycopg.errors.DataError as err:
        rows = data.splitlines(keepends=True)
        if len(rows) == 1:
            return [_rejected_row(rows[0], err.sqlstate or "22000")]
        middle = len(rows) // 2
        return _copy_salvaging(conn, b"".join(rows[:middle])) + _copy_salvaging(
            conn, b"".join(rows[middle:])
        )
    return []


def _rejected_row(row: bytes, sqlstate: str) -> bytes:
    """A raw COPY row Postgres rejected, as a dead-letter row with the original bytes."""
    fields = row.rstrip(b"\n").split(b"\t")
    partition, offset, timestamp, key, payload = fields[:5]
    topic, batch_id = fields[-2:]
    value = copy_unescape(payload.decode()).encode()
    reason = f"{REJECTED_BY_DATABASE}:{sqlstate}".encode()
    return (
        b"\t".join(
            (
                partition,
                offset,
                timestamp,
                key,
                b"\\\\x" + value.hex().encode(),
                reason,
                topic,
                batch_id,
            )
        )
        + b"\n"
    )
