"""Small hand-made gold tables, and a Soda folder whose gold layer holds only their contracts.

The publish and BI tests need a gold build without running dbt: two of the real gold tables,
with their real column lists and contracts, filled by hand as the transformer.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from carehouse.core.settings import PROJECT_ROOT, Settings

# The real contracts of these two gold tables are copied into the test Soda folder.
TABLES = ("avg_los_by_department", "dim_department")

AVG_LOS_DDL = """
create table {table} (
    department text not null,
    admission_month date not null,
    total_admissions bigint,
    unique_patients bigint,
    avg_los_days numeric(10, 2),
    stddev_los_days numeric(10, 2),
    min_los_days integer,
    max_los_days integer,
    readmission_count bigint,
    readmission_rate_pct numeric(5, 2),
    rolling_3m_avg_los_days numeric(10, 2),
    discharged_admissions bigint,
    index_admissions bigint,
    primary key (department, admission_month)
)
"""

DEPARTMENT_DDL = """
create table {table} (
    department text primary key,
    department_name text not null,
    bed_capacity integer not null
)
"""

DEPARTMENTS = ("CARDIOLOGY", "ICU", "ONCOLOGY", "GERIATRICS")


def soda_dir_with_gold_contracts(tmp: Path, tables: Sequence[str] = TABLES) -> Path:
    """A copy of soda/ whose gold layer holds only the contracts of ``tables``."""
    source = PROJECT_ROOT / "soda"
    target = tmp / "soda"
    (target / "contracts" / "gold").mkdir(parents=True)
    shutil.copy(source / "datasource.yml", target / "datasource.yml")
    for table in tables:
        shutil.copy(
            source / "contracts" / "gold" / f"{table}.yml",
            target / "contracts" / "gold" / f"{table}.yml",
        )
    return target


def los_rows(
    months: int, *, avg_los: str = "3.50", admissions: int = 4
) -> list[tuple[object, ...]]:
    """Rows of avg_los_by_department: every department for `months` months of 2026."""
    rows: list[tuple[object, ...]] = []
    for department in DEPARTMENTS:
        for month in range(1, months + 1):
            rows.append(
                (
                    department,
                    date(2026, month, 1),
                    admissions,
                    admissions - 1,
                    Decimal(avg_los),
                    Decimal("1.20"),
                    1,
                    6,
                    1,
                    Decimal("25.00"),
                    Decimal(avg_los),
                    admissions,
                    admissions,
                )
            )
    return rows


def department_rows(beds: int = 10) -> list[tuple[object, ...]]:
    """Rows of dim_department."""
    return [(code, code.title(), beds) for code in DEPARTMENTS]


def build_gold(
    settings: Settings,
    schema: str,
    *,
    los: Sequence[tuple[object, ...]],
    departments: Sequence[tuple[object, ...]],
) -> None:
    """(Re)create the two tables in `schema` as the transformer, as a dbt build would."""
    with psycopg.connect(settings.dsn("transformer")) as conn:
        for table, ddl, rows in (
            ("avg_los_by_department", AVG_LOS_DDL, los),
            ("dim_department", DEPARTMENT_DDL, departments),
        ):
            relation = sql.Identifier(schema, table)
            conn.execute(sql.SQL("drop table if exists {}").format(relation))
            conn.execute(sql.SQL(ddl).format(table=relation))
            if rows:
                insert = sql.SQL("insert into {} values ({})").format(
                    relation, sql.SQL(", ").join(sql.Placeholder() for _ in rows[0])
                )
                conn.cursor().executemany(insert, list(rows))


def gold_totals(conn: psycopg.Connection) -> tuple[int, int]:
    """(sum of total_admissions, sum of bed_capacity) in gold, read in one statement."""
    row = conn.execute(
        "select (select coalesce(sum(total_admissions), 0) from gold.avg_los_by_department),"
        " (select coalesce(sum(bed_capacity), 0) from gold.dim_department)"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
