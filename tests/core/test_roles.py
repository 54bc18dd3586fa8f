"""Least privilege: each role can do its job and nothing else."""

from __future__ import annotations

import psycopg
import pytest

from carehouse.core.bootstrap import bootstrap
from carehouse.core.settings import Settings

LAYERS = ["raw_admissions", "raw_patients", "raw_labs", "raw_vitals", "staging", "snapshots",
          "silver", "gold", "gold_next", "quarantine", "audit"]  # fmt: skip
NOT_FOR_BI = [schema for schema in LAYERS if schema != "gold"]


@pytest.fixture(scope="module")
def fixtures_tables(settings: Settings) -> None:
    """A raw table written by the loader and a gold table built by the transformer."""
    with psycopg.connect(settings.dsn("loader"), autocommit=True) as conn:
        conn.execute("create table if not exists raw_admissions.role_probe (id int)")
    with psycopg.connect(settings.dsn("transformer"), autocommit=True) as conn:
        conn.execute("create table if not exists gold.role_probe as select 1 as id")
        conn.execute("create table if not exists gold_next.role_probe as select 1 as id")
        conn.execute("create table if not exists staging.role_probe as select 1 as id")


def test_bootstrap_is_idempotent_and_creates_every_layer(settings: Settings, admin_conn) -> None:
    bootstrap(settings)
    bootstrap(settings)
    present = {row[0] for row in admin_conn.execute("select nspname from pg_namespace")}
    assert set(LAYERS) <= present


def test_no_application_role_is_privileged(admin_conn) -> None:
    rows = admin_conn.execute(
        "select rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls from pg_roles "
        "where rolname like 'carehouse\\_%' and rolname <> 'carehouse_admin'"
    ).fetchall()
    assert {row[0] for row in rows} == {"carehouse_loader", "carehouse_transformer", "carehouse_bi"}
    assert all(not any(row[1:]) for row in rows)


def test_bi_reads_gold_created_after_bootstrap(settings: Settings, fixtures_tables: None) -> None:
    with psycopg.connect(settings.dsn("bi")) as conn:
        assert conn.execute("select id from gold.role_probe").fetchone() == (1,)


@pytest.mark.parametrize("schema", NOT_FOR_BI)
def test_bi_is_denied_everything_but_gold(
    settings: Settings, fixtures_tables: None, schema: str
) -> None:
    with psycopg.connect(settings.dsn("bi")) as conn:
        allowed = conn.execute("select has_schema_privilege(%s, 'usage')", (schema,)).fetchone()
        assert allowed == (False,)
    if schema in ("raw_admissions", "gold_next", "staging"):
        with (
            psycopg.connect(settings.dsn("bi")) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(f"select * from {schema}.role_probe")


def test_bi_cannot_write_gold(settings: Settings, fixtures_tables: None) -> None:
    with (
        psycopg.connect(settings.dsn("bi")) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("insert into gold.role_probe values (2)")


def test_loader_writes_raw_only(settings: Settings, fixtures_tables: None) -> None:
    with (
        psycopg.connect(settings.dsn("loader")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("create table staging.loader_probe (id int)")
    with (
        psycopg.connect(settings.dsn("loader")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("select * from gold.role_probe")


def test_transformer_reads_raw_but_cannot_write_it(
    settings: Settings, fixtures_tables: None
) -> None:
    with psycopg.connect(settings.dsn("transformer")) as conn:
        assert conn.execute("select count(*) from raw_admissions.role_probe").fetchone() == (0,)
    with (
        psycopg.connect(settings.dsn("transformer")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("insert into raw_admissions.role_probe values (1)")
