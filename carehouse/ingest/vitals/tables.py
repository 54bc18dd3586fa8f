"""The drain's tables (raw rows, dead letters, offsets), its locks, and where it resumes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import sql

from carehouse.ingest.errors import LoadInProgress
from carehouse.ingest.vitals.settings import (
    DATASET,
    DEAD_LETTER_TABLE,
    DRAIN_GROUP,
    OFFSETS_TABLE,
    QUARANTINE_SCHEMA,
    TABLE,
)

# A killed predecessor's session holds the drain lock until Postgres notices it is gone.
LOCK_WAIT_SECONDS = 15.0

_RAW_DDL = """
create table if not exists {raw} (
    kafka_topic text not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    kafka_timestamp timestamptz,
    message_key bytea,
    payload jsonb not null,
    device_id text not null,
    patient_id text not null,
    observed_at timestamptz not null,
    heart_rate numeric not null,
    resp_rate numeric not null,
    systolic_bp numeric not null,
    diastolic_bp numeric not null,
    spo2 numeric not null,
    spo2_scale smallint not null,
    on_oxygen boolean not null,
    consciousness text not null,
    temperature_c numeric not null,
    _ingested_at timestamptz not null default now(),
    _drain_batch_id text not null,
    primary key (kafka_topic, kafka_partition, kafka_offset)
)
"""

_DEAD_LETTER_DDL = """
create table if not exists {dead} (
    kafka_topic text not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    kafka_timestamp timestamptz,
    message_key bytea,
    message_value bytea,
    reason text not null,
    _ingested_at timestamptz not null default now(),
    _drain_batch_id text not null,
    primary key (kafka_topic, kafka_partition, kafka_offset)
)
"""

_OFFSETS_DDL = """
create table if not exists {offsets} (
    consumer_group text not null,
    topic text not null,
    partition integer not null,
    next_offset bigint not null,
    updated_at timestamptz not null default now(),
    primary key (consumer_group, topic, partition)
)
"""

_COMMENTS = {
    "raw": (
        "Vital-sign messages from Kafka as received: coordinates (the key), the whole"
        " message as payload, its fields typed. Duplicates and implausible values are"
        " kept; staging de-duplicates and quarantines them."
    ),
    "dead": (
        "Kafka messages the vitals drain could not load (bytes, JSON, fields, types),"
        " with their raw key and value and the reason; committed with the batch."
    ),
    "offsets": (
        "Where the vitals drain resumes per partition; written in the same transaction"
        " as the rows, so it is the truth (Kafka's committed offsets are advisory)."
    ),
}


def raw_table() -> sql.Composable:
    """``raw_vitals.vitals``."""
    return sql.Identifier(DATASET, TABLE)


def dead_letter_table() -> sql.Composable:
    """``quarantine.vitals_dead_letters``."""
    return sql.Identifier(QUARANTINE_SCHEMA, DEAD_LETTER_TABLE)


def offsets_table() -> sql.Composable:
    """Where each partition's drain resumes."""
    return sql.Identifier(DATASET, OFFSETS_TABLE)


def ensure_tables(conn: psycopg.Connection) -> None:
    """Create the raw, dead-letter and offsets tables when missing."""
    with conn.transaction():
        # Workers starting together would race on CREATE TABLE IF NOT EXISTS.
        conn.execute("select pg_advisory_xact_lock(%s)", (lock_key("ddl"),))
        for ddl, table, comment in (
            (_RAW_DDL, raw_table(), _COMMENTS["raw"]),
            (_DEAD_LETTER_DDL, dead_letter_table(), _COMMENTS["dead"]),
            (_OFFSETS_DDL, offsets_table(), _COMMENTS["offsets"]),
        ):
            conn.execute(sql.SQL(ddl).format(raw=table, dead=table, offsets=table))
            conn.execute(sql.SQL("comment on table {} is {}").format(table, sql.Literal(comment)))
        # The vitals stream reads the last seconds of raw by ingestion time after every
        # micro-batch. BRIN: rows arrive in _ingested_at order, so a few block ranges answer
        # that, and it is kept per block range, where a btree adds an entry for every row
        # the drain copies.
        conn.execute(
            sql.SQL("create index if not exists {} on {} using brin (_ingested_at)").format(
                sql.Identifier("vitals_ingested_at_brin"), raw_table()
            )
        )


def lock_key(name: str) -> int:
    """The advisory lock key of one of the drain's locks."""
    digest = hashlib.sha256(f"carehouse.ingest.vitals.{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def drain_lock(conn: psycopg.Connection, topic: str, *, shared: bool) -> Iterator[None]:
    """One single drain per topic, or any number of scale-out workers, never both."""
    key = lock_key(f"drain.{topic}")
    take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    release = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        row = conn.execute(sql.SQL("select {}(%s)").format(sql.Identifier(take)), (key,)).fetchone()
        if row and row[0]:
            break
        if time.monotonic() > deadline:
            raise LoadInProgress(
                f"another vitals drain of topic {topic} holds the drain lock"
                f" ({'a single drain' if shared else 'a drain'} is running); try again when it ends"
            )
        time.sleep(0.2)
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute(sql.SQL("select {}(%s)").format(sql.Identifier(release)), (key,))


def read_positions(
    conn: psycopg.Connection, topic: str, partitions: Sequence[int], group: str = DRAIN_GROUP
) -> dict[int, int]:
    """The database's next offset of each partition (0 for a partition never drained)."""
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "insert into {} (consumer_group, topic, partition, next_offset)"
                " select %s, %s, partition, 0 from unnest(%s::integer[]) as partition"
                " on conflict do nothing"
            ).format(offsets_table()),
            (group, topic, list(partitions)),
        )
        rows = conn.execute(
            sql.SQL(
                "select partition, next_offset from {}"
                " where consumer_group = %s and topic = %s and partition = any(%s)"
            ).format(offsets_table()),
            (group, topic, list(partitions)),
        ).fetchall()
    return {partition: next_offset for partition, next_offset in rows}
