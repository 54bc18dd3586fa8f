"""The file ledger: a ledger from before files had ids gains them, keeping its rows."""

from __future__ import annotations

import psycopg
import pytest

from carehouse.core.settings import Settings
from carehouse.ingest import ledger
from tests.support.warehouse import isolated_warehouse

pytestmark = pytest.mark.slow

OLD_LEDGER = """
create table raw_labs._carehouse_files (
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
    status text not null,
    registered_at timestamptz not null default now(),
    loaded_at timestamptz,
    primary key (source, content_sha256)
)
"""


def test_an_older_ledger_gains_file_ids_and_ingestion_times(settings: Settings) -> None:
    with (
        isolated_warehouse(settings, "ledger") as warehouse,
        psycopg.connect(warehouse.dsn("loader"), autocommit=True) as conn,
    ):
        conn.execute(OLD_LEDGER)
        conn.execute(
            "insert into raw_labs._carehouse_files (source, file_name, content_sha256,"
            " size_bytes, rows_received, rows_loaded, rows_quarantined, blank_lines,"
            " new_columns, load_id, status, registered_at) values ('labs', 'a.ndjson', 'aa',"
            " 1, 1, 1, 0, 0, '{}', 'l1', 'loaded', '2026-03-01T02:00:00Z'), ('labs',"
            " 'b.ndjson', 'bb', 1, 1, 1, 0, 0, '{}', 'l2', 'loaded', '2026-03-02T02:00:00Z')"
        )
        for _ in range(2):  # every load runs it: the second time changes nothing
            ledger.ensure_tables(conn, "raw_labs", "labs_file_rejects")
        rows = conn.execute(
            "select file_name, file_id, ingested_at = registered_at"
            " from raw_labs._carehouse_files order by file_name"
        ).fetchall()
        (new_id,) = ledger.allocate_file_ids(conn, "raw_labs", 1)
    assert [(name, same) for name, _, same in rows] == [("a.ndjson", True), ("b.ndjson", True)]
    ids = [file_id for _, file_id, _ in rows]
    assert len(set(ids)) == 2 and new_id not in ids
