"""A throwaway warehouse database per test module, with a hand-checked raw admissions set.

The dbt and Soda tests build and break gold tables, so each module gets its own database in
the session's Postgres: bootstrapped like the real one, and dropped afterwards.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

import psycopg
from psycopg import sql

from carehouse.core.bootstrap import bootstrap
from carehouse.core.settings import Settings
from carehouse.ingest.ledger import ensure_tables
from carehouse.warehouse.dbt import DbtResult
from dlt_sources.admissions.settings import DATASET, QUARANTINE_TABLE, SOURCE


class RawAdmission(NamedTuple):
    """One CSV record as dlt lands it: every business column text, plus where it came from.

    `source_file` and `ingested_at` are per file: they go to the file's ledger row, and the
    raw row carries that row's file_id (`_source_file_id`) and its line.
    """

    admission_id: str | None
    patient_id: str | None
    admitted_at: str | None
    discharged_at: str | None
    department: str | None
    admission_type: str | None
    discharge_disposition: str | None
    primary_diagnosis_code: str | None
    total_charges: str | None
    insurer_id: str | None
    source_file: str = "admissions_2026-03-20.csv"
    source_line: int = 0
    ingested_at: datetime = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)


RAW_TABLE_DDL = sql.SQL(
    """
    create table if not exists raw_admissions.admissions (
        admission_id text,
        patient_id text,
        admitted_at text,
        discharged_at text,
        department text,
        admission_type text,
        discharge_disposition text,
        primary_diagnosis_code text,
        total_charges text,
        insurer_id text,
        _source_line bigint not null,
        _source_file_id bigint not null
    )
    """
)

RAW_COLUMNS = (
    "admission_id", "patient_id", "admitted_at", "discharged_at", "department",
    "admission_type", "discharge_disposition", "primary_diagnosis_code", "total_charges",
    "insurer_id", "_source_line", "_source_file_id",
)  # fmt: skip


def _line(number: int, record: RawAdmission) -> RawAdmission:
    return record._replace(source_line=number)


# Hand-checked: see EXPECTED_GOLD for the arithmetic. Patients P1..P4 are valid, E* rows are
# dirty and must land in quarantine with the reason in EXPECTED_QUARANTINE.
ADMISSIONS: tuple[RawAdmission, ...] = (
    # P1, cardiology. A1 (LOS 4, discharged Jan 6) -> A2 on day 30 counts as a readmission.
    # An older version of A1 (discharged Jan 9) arrived a day earlier and is superseded.
    RawAdmission("A1", "P1", "2026-01-02T08:00:00", "2026-01-09T12:00:00", "CARDIOLOGY",
                 "emergency", "home", "I21.9", "1000.00", "INS1",
                 source_file="admissions_2026-03-19.csv", source_line=1,
                 ingested_at=datetime(2026, 3, 19, 2, 0, tzinfo=UTC)),
    _line(1, RawAdmission("A1", "P1", "2026-01-02T08:00:00", "2026-01-06T12:00:00",
                          "CARDIOLOGY", "emergency", "home", "I21.9", "1200.50", "INS1")),
    # A2: same-day stay (LOS 0); A3 follows on day 31, so A2 is not readmitted.
    _line(2, RawAdmission("A2", "P1", "2026-02-05T09:00:00", "2026-02-05T18:00:00",
                          "Cardiology", "emergency", "home", "I21.9", "300", None)),
    _line(3, RawAdmission("A3", "P1", "2026-03-08T10:00:00", "2026-03-10T10:00:00",
                          "  cardiology ", "urgent", "home", "I21.9", "", " ")),
    # P2, ICU. B1 (LOS 5) is followed by an elective admission: not a readmission.
    _line(4, RawAdmission("B1", "P2", "2026-01-10T22:00:00", "2026-01-15T06:00:00", "ICU",
                          "emergency", "home", "J96.0", "5000", "INS2")),
    # B2: elective, LOS 3, transferred out: not an index admission.
    _line(5, RawAdmission("B2", "P2", "2026-01-20T07:00:00", "2026-01-23T07:00:00", "Icu",
                          "Elective", "transfer", "J96.0", "2000", "INS2")),
    # P3: C1 died, LOS 8: counts for LOS, not an index admission.
    _line(6, RawAdmission("C1", "P3", "2026-01-25T10:00:00", "2026-02-02T10:00:00", "ICU",
                          "emergency", "died", "J96.0", "9000", "INS3")),
    # P4: still in hospital; the offset puts the admission on Feb 28 UTC, not March 1.
    _line(7, RawAdmission("D1", "P4", "2026-03-01T00:30:00+01:00", None, "ICU", "emergency",
                          None, "J96.0", None, None)),
    # Dirty records.
    _line(8, RawAdmission("E1", "P5", "2026-02-30T10:00:00", "2026-03-02T10:00:00", "ICU",
                          "emergency", "home", "J96.0", "1", "INS1")),
    _line(9, RawAdmission("E2", "P6", "2026-02-10T10:00:00", "2026-02-09T10:00:00", "ICU",
                          "emergency", "home", "J96.0", "1", "INS1")),
    _line(10, RawAdmission("E3", "P7", "2026-02-10T10:00:00", "2026-02-12T10:00:00",
                           "RADIOLOGY", "emergency", "home", "J96.0", "1", "INS1")),
    _line(11, RawAdmission(None, "P8", "2026-02-10T10:00:00", "2026-02-12T10:00:00", "ICU",
                           "emergency", "home", "J96.0", "1", "INS1")),
    _line(12, RawAdmission("E5", "P9", "2026-02-10T10:00:00", "2026-02-12T10:00:00", "ICU",
                           "emergency", "home", "J96.0", "12,50", "INS1")),
    _line(13, RawAdmission("E6", "P9", "10/02/2026 10:00", "2026-02-12T10:00:00", "ICU",
                           "emergency", "home", "J96.0", "1", "INS1")),
)  # fmt: skip

GOLD_COLUMNS = (
    "department", "admission_month", "total_admissions", "unique_patients", "avg_los_days",
    "stddev_los_days", "min_los_days", "max_los_days", "readmission_count",
    "readmission_rate_pct", "rolling_3m_avg_los_days", "discharged_admissions",
    "index_admissions",
)  # fmt: skip

D = Decimal
# CARDIOLOGY: Jan A1 LOS 4, readmitted (1/1 = 100%); Feb A2 LOS 0, not readmitted;
#   Mar A3 LOS 2. Rolling: Jan 4, Feb (4+0)/2 = 2, Mar (4+0+2)/3 = 2.
# ICU Jan: B1 5, B2 3, C1 8 -> mean 16/3 = 5.33, sample stddev sqrt(19/3) = 2.52; only B1 is
#   an index admission and it is not readmitted (0%). ICU Feb: D1 only, in hospital: no LOS,
#   no index admission (rate null); rolling = Jan's 5.33 (Dec..Feb window).
EXPECTED_GOLD = [
    ("CARDIOLOGY", "2026-01-01", 1, 1, D("4.00"), None, 4, 4, 1, D("100.00"), D("4.00"), 1, 1),
    ("CARDIOLOGY", "2026-02-01", 1, 1, D("0.00"), None, 0, 0, 0, D("0.00"), D("2.00"), 1, 1),
    ("CARDIOLOGY", "2026-03-01", 1, 1, D("2.00"), None, 2, 2, 0, D("0.00"), D("2.00"), 1, 1),
    ("ICU", "2026-01-01", 3, 2, D("5.33"), D("2.52"), 3, 8, 0, D("0.00"), D("5.33"), 3, 1),
    ("ICU", "2026-02-01", 1, 1, None, None, None, None, 0, None, D("5.33"), 0, 0),
]

EXPECTED_STAGED = {"A1", "A2", "A3", "B1", "B2", "C1", "D1"}
EXPECTED_QUARANTINE = {
    "E1": "INVALID_DATE",
    "E2": "INVALID_LOS",
    "E3": "UNKNOWN_DEPARTMENT",
    # No admission id: the record is its own, named by file and line (its record_key is
    # 'row:<_source_file_id>:<line>').
    "row:admissions_2026-03-20.csv:11": "MISSING_ADMISSION_ID",
    "E5": "INVALID_AMOUNT",
    "E6": "INVALID_DATE",
}


@contextmanager
def isolated_warehouse(settings: Settings, purpose: str) -> Iterator[Settings]:
    """A new bootstrapped database on the session's server; dropped on exit."""
    database = f"carehouse_{purpose}_{secrets.token_hex(4)}"
    with psycopg.connect(settings.dsn("admin"), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    try:
        isolated = settings.for_database(database)
        bootstrap(isolated)
        yield isolated
    finally:
        with psycopg.connect(settings.dsn("admin"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
            )


@dataclass(frozen=True)
class BuiltTemplate:
    """A database built once per session, copied by the modules that start from it."""

    database: str
    build: DbtResult


@contextmanager
def cloned_warehouse(settings: Settings, template: str, purpose: str) -> Iterator[Settings]:
    """A copy of the built database ``template`` (Postgres copies its files): no rebuild.

    For modules that start from the same warehouse and change it in their own way. The
    template must have no open connection (Postgres refuses to copy it otherwise).
    """
    database = f"carehouse_{purpose}_{secrets.token_hex(4)}"
    with psycopg.connect(settings.dsn("admin"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(database), sql.Identifier(template)
            )
        )
    try:
        yield settings.for_database(database)
    finally:
        with psycopg.connect(settings.dsn("admin"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
            )


def load_raw_admissions(settings: Settings, records: Sequence[RawAdmission]) -> None:
    """Create raw_admissions.admissions as the loader (as dlt would) and append records.

    Each distinct (file, ingestion time) becomes one committed file in the ledger, whose
    file_id the records carry, as the loader records them: staging reads only these.
    """
    insert = sql.SQL("insert into raw_admissions.admissions ({}) values ({})").format(
        sql.SQL(", ").join(sql.Identifier(column) for column in RAW_COLUMNS),
        sql.SQL(", ").join(sql.Placeholder() for _ in RAW_COLUMNS),
    )
    files = sorted({(record.source_file, record.ingested_at) for record in records})
    with psycopg.connect(settings.dsn("loader")) as conn:
        conn.execute(RAW_TABLE_DDL)
        ensure_tables(conn, DATASET, QUARANTINE_TABLE)
        file_ids: dict[tuple[str, datetime], int] = {}
        for name, ingested_at in files:
            content = hashlib.sha256(f"{name}@{ingested_at.isoformat()}".encode()).hexdigest()
            row = conn.execute(
                "insert into raw_admissions._carehouse_files (source, file_name, content_sha256,"
                " size_bytes, rows_received, rows_loaded, rows_quarantined, blank_lines,"
                " new_columns, load_id, ingested_at, status)"
                " values (%s, %s, %s, 0, 0, 0, 0, 0, '{}', %s, %s, 'loaded')"
                " on conflict (source, content_sha256) do update set status = excluded.status"
                " returning file_id",
                (SOURCE, name, content, f"load-{ingested_at:%Y%m%d}", ingested_at),
            ).fetchone()
            assert row is not None
            file_ids[name, ingested_at] = row[0]
        with conn.cursor() as cursor:
            cursor.executemany(
                insert,
                [
                    (
                        *record[:10],
                        record.source_line,
                        file_ids[record.source_file, record.ingested_at],
                    )
                    for record in records
                ],
            )


def fetch_gold(settings: Settings) -> list[tuple[object, ...]]:
    """gold.avg_los_by_department as read by BI, in a stable order, dates as ISO text."""
    query = sql.SQL("select {} from gold.avg_los_by_department order by 1, 2").format(
        sql.SQL(", ").join(sql.Identifier(column) for column in GOLD_COLUMNS)
    )
    with psycopg.connect(settings.dsn("bi")) as conn:
        return [(row[0], row[1].isoformat(), *row[2:]) for row in conn.execute(query).fetchall()]


def node_name(unique_id: str) -> str:
    """A dbt node's name from its unique id.

    Tests are ``test.<project>.<name>``, generic ones followed by a hash; other nodes end in
    their name (``unit_test.<project>.<model>.<name>``, ``model.<project>.<name>``).
    """
    parts = unique_id.split(".")
    return parts[2] if parts[0] == "test" else parts[-1]
