"""The BI role reads every published gold table, with psycopg and with pandas, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the dev group
import psycopg
import pytest
import sqlalchemy
from psycopg import sql

from carehouse.core.settings import Role, Settings
from carehouse.warehouse.publish import GOLD_NEXT, publish_gold
from tests.support.handmade import TABLES, build_gold, department_rows, los_rows
from tests.support.warehouse import isolated_warehouse

pytestmark = pytest.mark.slow

# Every schema BI must not read, with the role that owns (or writes) tables there.
DENIED: dict[str, Role] = {
    "raw_admissions": "loader",
    "raw_patients": "loader",
    "raw_labs": "loader",
    "raw_vitals": "loader",
    "quarantine": "loader",
    "staging": "transformer",
    "snapshots": "transformer",
    "silver": "transformer",
    "audit": "transformer",
    GOLD_NEXT: "transformer",
}


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    """Published gold tables, and a table in every schema BI must not read."""
    with isolated_warehouse(settings, "bi") as isolated:
        build_gold(isolated, GOLD_NEXT, los=los_rows(2), departments=department_rows())
        publish_gold(isolated, "run-bi")
        for schema, role in DENIED.items():
            with psycopg.connect(isolated.dsn(role)) as conn:
                conn.execute(
                    sql.SQL("create table {} as select 1 as secret").format(
                        sql.Identifier(schema, "bi_must_not_read")
                    )
                )
        yield isolated


def engine(settings: Settings) -> sqlalchemy.Engine:
    """A SQLAlchemy engine on the `carehouse dsn --role bi` URL, with the psycopg 3 driver."""
    url = settings.dsn("bi").replace("postgresql://", "postgresql+psycopg://", 1)
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)


@pytest.mark.parametrize("table", TABLES)
def test_bi_reads_every_gold_table_with_psycopg(warehouse: Settings, table: str) -> None:
    with psycopg.connect(warehouse.dsn("bi")) as conn:
        count = conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier("gold", table))
        ).fetchone()
    assert count is not None and count[0] > 0


@pytest.mark.parametrize("table", TABLES)
def test_bi_reads_every_gold_table_with_pandas(warehouse: Settings, table: str) -> None:
    query = sql.SQL("select * from {}").format(sql.Identifier("gold", table)).as_string()
    through_sqlalchemy = pd.read_sql(query, engine(warehouse))
    # pandas warns that it tests only SQLAlchemy connections; a psycopg 3 connection works too.
    with (
        psycopg.connect(warehouse.dsn("bi")) as conn,
        pytest.warns(UserWarning, match="SQLAlchemy"),
    ):
        through_psycopg = pd.read_sql(query, conn)
    assert len(through_sqlalchemy) > 0
    assert through_sqlalchemy.equals(through_psycopg)


def test_gold_lists_exactly_the_published_tables(warehouse: Settings) -> None:
    listed = pd.read_sql(
        "select table_name from information_schema.tables where table_schema = 'gold'"
        " order by table_name",
        engine(warehouse),
    )
    assert tuple(listed["table_name"]) == TABLES


@pytest.mark.parametrize("schema", sorted(DENIED))
def test_bi_is_denied_every_other_schema(warehouse: Settings, schema: str) -> None:
    with (
        psycopg.connect(warehouse.dsn("bi")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema"),
    ):
        conn.execute(sql.SQL("select * from {}").format(sql.Identifier(schema, "bi_must_not_read")))


def test_bi_is_denied_through_pandas_too(warehouse: Settings) -> None:
    with pytest.raises(pd.errors.DatabaseError, match="permission denied for schema"):
        pd.read_sql("select * from silver.bi_must_not_read", engine(warehouse))


def test_bi_cannot_write_gold(warehouse: Settings) -> None:
    with (
        psycopg.connect(warehouse.dsn("bi")) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("delete from gold.dim_department")
