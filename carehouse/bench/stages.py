"""The measured stages and their baselines; each returns the number of records it handled."""

from __future__ import annotations

from pathlib import Path

from psycopg import sql

from carehouse.database import connect
from carehouse.ingest.admissions import load_admissions
from carehouse.settings import Settings

ADMISSION_COLUMNS = (
    "admission_id", "patient_id", "admitted_at", "discharged_at", "department",
    "admission_type", "discharge_disposition", "primary_diagnosis_code", "total_charges",
    "insurer_id",
)  # fmt: skip
COPY_CHUNK = 1 << 20


def admissions_load(settings: Settings, data_dir: Path) -> int:
    """Carehouse's admissions loader (dlt, ledger, quarantine) over the generated files."""
    summary = load_admissions(settings, data_dir / "admissions")
    return summary.received


def admissions_copy(settings: Settings, data_dir: Path) -> int:
    """Baseline: a plain psycopg COPY of the same files into an equivalent all-text table."""
    table = sql.Identifier("bench", "admissions_copy")
    columns = sql.SQL(", ").join(
        sql.SQL("{} text").format(sql.Identifier(c)) for c in ADMISSION_COLUMNS
    )
    rows = 0
    with connect(settings, "admin") as conn:
        conn.execute("create schema if not exists bench")
        conn.execute(sql.SQL("drop table if exists {}").format(table))
        conn.execute(sql.SQL("create table {} ({})").format(table, columns))
        copy = sql.SQL("copy {} from stdin with (format csv, header true)").format(table)
        with conn.cursor() as cursor:
            for path in sorted((data_dir / "admissions").glob("*.csv")):
                with cursor.copy(copy) as stream, path.open("rb") as handle:
                    while chunk := handle.read(COPY_CHUNK):
                        stream.write(chunk)
                rows += cursor.rowcount
        conn.commit()
    return rows
