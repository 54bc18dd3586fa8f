"""The file ledger and the protocol that makes loading a batch of files all-or-nothing.

dlt COPYs each part file in its own transaction, so raw rows cannot commit in
the same transaction as the ledger. Instead the ledger is the commit marker:

1. prepare: one transaction writes a `pending` ledger row per file (with its
   counts) and the file's rejected records to quarantine, tagged with the load id;
2. dlt loads the raw rows, all tagged with the same `_dlt_load_id`;
3. commit: one statement flips the load's ledger rows to `loaded`.

A file counts as loaded only when its ledger row says `loaded`. Whatever a
crash leaves behind (a `pending` load id) is rolled back before the next load:
its raw rows, quarantine rows and ledger rows are deleted in one transaction,
and the files are read again. The ledger's primary key (source, content hash)
means a file's content can be recorded once, whatever its name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

import psycopg
from psycopg import sql

from carehouse.ingest.files import FileOutcome

LEDGER_TABLE = "_carehouse_files"
QUARANTINE_SCHEMA = "quarantine"

_LEDGER_DDL = """
create table if not exists {ledger} (
    source text not null,
    file_name text not null,
    content_sha256 text not null,
    size_bytes bigint not null,
    rows_received bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    blank_lines bigint not null,
    new_columns text[] not null,
    rejected_reason text,
    load_id text not null,
    status text not null check (status in ('pending', 'loaded')),
    registered_at timestamptz not null default now(),
    loaded_at timestamptz,
    primary key (source, content_sha256)
)
"""

_QUARANTINE_DDL = """
create table if not exists {quarantine} (
    source_file text not null,
    source_line bigint not null,
    source_hash text not null,
    reason text not null,
    raw_line text not null,
    _ingested_at timestamptz not null,
    _dlt_load_id text not null
)
"""


_LEDGER_COMMENT = (
    "One row per landed file content. Raw rows count as committed only when their"
    " _dlt_load_id has status 'loaded' here; rows of a 'pending' load are rolled back."
)
_QUARANTINE_COMMENT = (
    "Landed records that could not be loaded into raw (wrong field count, bad bytes,"
    " unusable header), with their raw text; received = loaded + quarantined per file."
)


class LoadInProgress(RuntimeError):
    """Another process is loading the same source right now."""


def _ledger(dataset: str) -> sql.Composable:
    return sql.Identifier(dataset, LEDGER_TABLE)


def _quarantine(table: str) -> sql.Composable:
    return sql.Identifier(QUARANTINE_SCHEMA, table)


@contextmanager
def exclusive(conn: psycopg.Connection, source: str) -> Iterator[None]:
    """Hold the source's advisory lock: one loader per source at a time."""
    key = int.from_bytes(
        hashlib.sha256(f"carehouse.ingest.{source}".encode()).digest()[:8], "big", signed=True
    )
    row = conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()
    if not row or not row[0]:
        raise LoadInProgress(f"another {source} load is running; try again when it ends")
    try:
        yield
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (key,))


def ensure_tables(conn: psycopg.Connection, dataset: str, quarantine_table: str) -> None:
    """Create the ledger and the quarantine table when missing."""
    with conn.transaction():
        conn.execute(sql.SQL(_LEDGER_DDL).format(ledger=_ledger(dataset)))
        conn.execute(
            sql.SQL("comment on table {ledger} is {text}").format(
                ledger=_ledger(dataset), text=sql.Literal(_LEDGER_COMMENT)
            )
        )
        conn.execute(sql.SQL(_QUARANTINE_DDL).format(quarantine=_quarantine(quarantine_table)))
        conn.execute(
            sql.SQL("comment on table {quarantine} is {text}").format(
                quarantine=_quarantine(quarantine_table), text=sql.Literal(_QUARANTINE_COMMENT)
            )
        )


def loaded_files(
    conn: psycopg.Connection, dataset: str, source: str, hashes: Iterable[str]
) -> dict[str, str]:
    """Content hash -> file name, for the hashes already loaded."""
    query = sql.SQL(
        "select content_sha256, file_name from {ledger}"
        " where source = %s and status = 'loaded' and content_sha256 = any(%s)"
    ).format(ledger=_ledger(dataset))
    rows = conn.execute(query, (source, list(hashes))).fetchall()
    return {sha256: name for sha256, name in rows}


def pending_loads(conn: psycopg.Connection, dataset: str, source: str) -> list[str]:
    """Load ids that were prepared but never committed."""
    query = sql.SQL(
        "select distinct load_id from {ledger} where source = %s and status = 'pending'"
    ).format(ledger=_ledger(dataset))
    return [load_id for (load_id,) in conn.execute(query, (source,)).fetchall()]


def roll_back(
    conn: psycopg.Connection,
    *,
    dataset: str,
    table: str,
    quarantine_table: str,
    source: str,
    load_ids: list[str],
) -> int:
    """Delete every trace of uncommitted loads; returns the raw rows deleted."""
    deleted = 0
    with conn.transaction():
        raw_exists = conn.execute(
            "select to_regclass(%s) is not null",
            (sql.Identifier(dataset, table).as_string(conn),),
        ).fetchone()
        if raw_exists and raw_exists[0]:
            cursor = conn.execute(
                sql.SQL("delete from {raw} where _dlt_load_id = any(%s)").format(
                    raw=sql.Identifier(dataset, table)
                ),
                (load_ids,),
            )
            deleted = cursor.rowcount
        conn.execute(
            sql.SQL("delete from {quarantine} where _dlt_load_id = any(%s)").format(
                quarantine=_quarantine(quarantine_table)
            ),
            (load_ids,),
        )
        conn.execute(
            sql.SQL(
                "delete from {ledger} where source = %s and status = 'pending'"
                " and load_id = any(%s)"
            ).format(ledger=_ledger(dataset)),
            (source, load_ids),
        )
    return deleted


def prepare(
    conn: psycopg.Connection,
    *,
    dataset: str,
    quarantine_table: str,
    source: str,
    load_id: str,
    outcomes: Iterable[FileOutcome],
    rejects: Iterable[tuple[str, int, str, str, str]],
    ingested_at: datetime,
    superseded: Iterable[str] = (),
) -> None:
    """Record the batch as pending and quarantine its rejected records, in one transaction.

    `superseded` names content hashes whose earlier load (a whole-file rejection) this
    batch replaces: their ledger rows and quarantined records are deleted first.
    """
    insert = sql.SQL(
        "insert into {ledger} (source, file_name, content_sha256, size_bytes, rows_received,"
        " rows_loaded, rows_quarantined, blank_lines, new_columns, rejected_reason, load_id,"
        " status) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending')"
    ).format(ledger=_ledger(dataset))
    copy = sql.SQL(
        "copy {quarantine} (source_file, source_line, source_hash, reason, raw_line,"
        " _ingested_at, _dlt_load_id) from stdin"
    ).format(quarantine=_quarantine(quarantine_table))
    replaced = list(superseded)
    with conn.transaction(), conn.cursor() as cursor:
        if replaced:
            cursor.execute(
                sql.SQL("delete from {quarantine} where source_hash = any(%s)").format(
                    quarantine=_quarantine(quarantine_table)
                ),
                (replaced,),
            )
            cursor.execute(
                sql.SQL(
                    "delete from {ledger} where source = %s and content_sha256 = any(%s)"
                ).format(ledger=_ledger(dataset)),
                (source, replaced),
            )
        cursor.executemany(
            insert,
            [
                (
                    source,
                    o.file.name,
                    o.file.sha256,
                    o.file.size_bytes,
                    o.received,
                    o.loaded,
                    o.quarantined_total,
                    o.blank_lines,
                    list(o.new_columns),
                    o.rejected,
                    load_id,
                )
                for o in outcomes
            ],
        )
        with cursor.copy(copy) as stream:
            for name, line, sha256, reason, raw in rejects:
                stream.write_row((name, line, sha256, reason, raw, ingested_at, load_id))


def commit(
    conn: psycopg.Connection, *, dataset: str, source: str, load_id: str, files: int
) -> None:
    """Mark a prepared load as loaded: from now on its files are skipped."""
    with conn.transaction():
        cursor = conn.execute(
            sql.SQL(
                "update {ledger} set status = 'loaded', loaded_at = now()"
                " where source = %s and load_id = %s and status = 'pending'"
            ).format(ledger=_ledger(dataset)),
            (source, load_id),
        )
        if cursor.rowcount != files:
            # Someone else rolled this load back under us: abort rather than half-commit.
            raise RuntimeError(
                f"{source} load {load_id}: expected {files} pending files, found {cursor.rowcount}"
            )
