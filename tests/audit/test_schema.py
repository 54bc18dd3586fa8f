"""audit.pipeline_runs is defined twice, and both definitions build the same table.

The orchestrator creates it from ``carehouse.audit.schema.PIPELINE_RUNS_DDL`` (a run that
fails before dbt ever ran is still recorded); dbt's on-run-start hook creates it from
``create_audit_tables()`` (dbt/macros/hooks/audit.sql), so that a ``dbt build`` by hand
finds its source. Whichever runs first in a warehouse makes the table the other then finds:
each is created here in a fresh database and the two are compared in the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from carehouse.audit.schema import ensure_pipeline_runs
from carehouse.core.settings import Settings
from carehouse.warehouse.dbt import run_dbt
from tests.support.warehouse import isolated_warehouse

pytestmark = pytest.mark.slow

# What makes two tables the same to the orchestrator, dbt and gold.pipeline_run_audit: the
# columns in order (type with modifiers, nullability, default), constraints and indexes, and
# the owner. The table comment is not compared (only the hook sets one).
_COLUMNS = """
select
    attribute.attname,
    format_type(attribute.atttypid, attribute.atttypmod),
    attribute.attnotnull,
    pg_get_expr(default_value.adbin, default_value.adrelid)
from pg_attribute as attribute
left join pg_attrdef as default_value
    on default_value.adrelid = attribute.attrelid and default_value.adnum = attribute.attnum
where
    attribute.attrelid = 'audit.pipeline_runs'::regclass
    and attribute.attnum > 0
    and not attribute.attisdropped
order by attribute.attnum
"""

_CONSTRAINTS = """
select conname, contype, pg_get_constraintdef(oid)
from pg_constraint
where conrelid = 'audit.pipeline_runs'::regclass
order by conname
"""

_INDEXES = """
select indexname, indexdef from pg_indexes
where schemaname = 'audit' and tablename = 'pipeline_runs'
order by indexname
"""

_OWNER = (
    "select pg_get_userbyid(relowner) from pg_class where oid = 'audit.pipeline_runs'::regclass"
)


def _catalog(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.dsn("admin")) as conn:
        return {
            name: conn.execute(query).fetchall()
            for name, query in (
                ("columns", _COLUMNS),
                ("constraints", _CONSTRAINTS),
                ("indexes", _INDEXES),
                ("owner", _OWNER),
            )
        }


@pytest.fixture(scope="module")
def by_orchestrator(settings: Settings) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """The table as the orchestrator creates it (as the transformer, who owns `audit`)."""
    with isolated_warehouse(settings, "audit_python") as warehouse:
        with psycopg.connect(warehouse.dsn("transformer")) as conn:
            ensure_pipeline_runs(conn)
        yield _catalog(warehouse)


@pytest.fixture(scope="module")
def by_dbt(settings: Settings) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """The table as dbt's on-run-start hook creates it, in a run of its one reader."""
    with isolated_warehouse(settings, "audit_dbt") as warehouse:
        run_dbt(warehouse, ["run", "--select", "stg_audit__pipeline_runs"])
        yield _catalog(warehouse)


def test_the_table_is_there_with_a_primary_key(
    by_orchestrator: dict[str, list[tuple[Any, ...]]],
) -> None:
    names = [column[0] for column in by_orchestrator["columns"]]
    assert names[:2] == ["run_id", "business_date"]
    assert "failed_step" in names
    # Postgres 18 lists not-null constraints here too (kind 'n').
    keys = [definition for _, kind, definition in by_orchestrator["constraints"] if kind == "p"]
    assert keys == ["PRIMARY KEY (run_id)"]


@pytest.mark.parametrize("part", ["columns", "constraints", "indexes", "owner"])
def test_orchestrator_and_dbt_create_the_same_table(
    by_orchestrator: dict[str, list[tuple[Any, ...]]],
    by_dbt: dict[str, list[tuple[Any, ...]]],
    part: str,
) -> None:
    assert by_dbt[part] == by_orchestrator[part]
