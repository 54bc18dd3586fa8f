"""Verify-then-publish for gold: BI reads only a gold that passed its gate, never half of one.

dbt builds the gold models into the shadow schema ``gold_next``; the gold gate verifies them
there (``verify_layer(settings, "gold", run_id, schema="gold_next")``); only then does
:func:`publish_gold` move every table and view of ``gold_next`` into ``gold``, in one
transaction, as the transformer (which owns both schemas). A BI session sees the old gold or
the new one, never a mix: the publish takes an ACCESS EXCLUSIVE lock on every relation it
replaces before changing any, so it waits for BI transactions that already read gold to
end, and BI queries arriving meanwhile wait for the publish (at most ``lock_timeout_s``; past
that the publish fails and changes nothing). A gate that fails simply means no publish: gold
stays exactly as it was (:func:`gold_checksums` proves it).

Incremental gold models (``materialized='incremental'``) need their previous state in
``gold_next`` when dbt builds there, but a publish moves that state into ``gold``. So before
each gold build :func:`clone_gold_to_next` empties ``gold_next`` (leftovers of a build whose
gate failed must not be published later) and copies the published tables of the incremental
models back into it; dbt then adds this run's rows to the published state. The models are
found in dbt's manifest by :func:`incremental_gold_models`.

The publish is recorded in ``audit.publishes`` with every table's row count; the gold gate's
"no sudden drop" check compares the next build with those counts.

Caveat (PostgreSQL, not this code): a repeatable-read BI transaction whose snapshot is older
than the dbt build, and that reads a gold table for the first time after the publish, finds
the new table but not its rows (they were written after its snapshot), as with any DDL swap.
BI tools query in autocommit; notebooks should not hold transactions open for hours.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

from carehouse.audit.publishes import record_publish
from carehouse.audit.schema import ensure_audit_tables
from carehouse.core.database import connect
from carehouse.core.settings import ROLE_NAMES, Settings
from carehouse.warehouse.dbt import dbt_paths

GOLD = "gold"
GOLD_NEXT = "gold_next"
BI_ROLE = ROLE_NAMES["bi"]

# One publish or clone at a time (two flows, or a clone racing a publish, would interleave).
PUBLISH_LOCK = "carehouse.publish"
DEFAULT_LOCK_TIMEOUT_S = 60.0

# relkind: table, partitioned table, view, materialized view. Dropped views first (they may
# depend on the tables), moved tables first (the views moved after them follow by OID).
_RELKINDS = ("r", "p", "v", "m")
_KIND_WORD = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}
_DROP_ORDER = {"v": 0, "m": 1, "r": 2, "p": 2}
_MOVE_ORDER = {"r": 0, "p": 0, "m": 1, "v": 2}


@dataclass(frozen=True)
class PublishResult:
    """What one publish moved into gold."""

    run_id: str
    published_at: datetime
    tables: tuple[str, ...]  # every relation published, tables and views
    row_counts: dict[str, int] = field(default_factory=dict)
    replaced: tuple[str, ...] = ()  # relations of gold that the publish replaced

    def one_line(self) -> str:
        """`published 12 relations into gold (9 replaced): 48,113 rows`."""
        rows = sum(self.row_counts.values())
        return (
            f"published {len(self.tables)} relations into {GOLD}"
            f" ({len(self.replaced)} replaced): {rows:,} rows"
        )


class PublishError(RuntimeError):
    """Nothing was published; gold is unchanged. The message says why."""


def publish_gold(
    settings: Settings, run_id: str, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> PublishResult:
    """Move every table and view of ``gold_next`` into ``gold`` in one transaction.

    Call it only after the gold gate passed on ``gold_next``. Each relation replaces the one of
    the same name in gold (a gold relation without a counterpart in gold_next is left alone);
    BI gets SELECT on each; ``audit.publishes`` records the row counts, in the same
    transaction.

    Args:
        settings: The carehouse settings.
        run_id: The pipeline run whose verified build is published.
        lock_timeout_s: How long to wait for BI transactions that hold gold tables.

    Returns:
        The relations published and their row counts.

    Raises:
        PublishError: gold_next is empty, or the locks could not be had in time (BI
            transactions held them) or a deadlock with one; gold and gold_next are unchanged.
    """
    with connect(settings, "transformer") as conn:
        try:
            with conn.transaction():
                _lock(conn, lock_timeout_s)
                incoming = _relations(conn, GOLD_NEXT)
                if not incoming:
                    raise PublishError(
                        f"{GOLD_NEXT} is empty: nothing to publish (did the gold build run?)"
                    )
                existing = _relations(conn, GOLD)
                replaced = {name: kind for name, kind in existing.items() if name in incoming}
                # Every lock before any change, so that no BI query can see some relations new
                # and others old.
                targets = [sql.Identifier(GOLD_NEXT, name) for name in sorted(incoming)]
                targets += [sql.Identifier(GOLD, name) for name in sorted(replaced)]
                conn.execute(
                    sql.SQL("lock table {} in access exclusive mode").format(
                        sql.SQL(", ").join(targets)
                    )
                )
                row_counts = {name: _row_count(conn, GOLD_NEXT, name) for name in sorted(incoming)}
                for name, kind in sorted(replaced.items(), key=lambda item: _DROP_ORDER[item[1]]):
                    conn.execute(
                        sql.SQL("drop {kind} {relation}").format(
                            kind=sql.SQL(_KIND_WORD[kind]),
                            relation=sql.Identifier(GOLD, name),
                        )
                    )
                for name, kind in sorted(incoming.items(), key=lambda item: _MOVE_ORDER[item[1]]):
                    conn.execute(
                        sql.SQL("alter {kind} {relation} set schema {gold}").format(
                            kind=sql.SQL(_KIND_WORD[kind]),
                            relation=sql.Identifier(GOLD_NEXT, name),
                            gold=sql.Identifier(GOLD),
                        )
                    )
                    # Default privileges apply to relations created in gold, not moved there.
                    conn.execute(
                        sql.SQL("grant select on {relation} to {bi}").format(
                            relation=sql.Identifier(GOLD, name), bi=sql.Identifier(BI_ROLE)
                        )
                    )
                ensure_audit_tables(conn)
                record_publish(conn, run_id, sorted(incoming), row_counts)
                published = conn.execute("select now()").fetchone()
                assert published is not None
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected) as err:
            raise PublishError(
                f"could not lock gold within {lock_timeout_s:g}s ({type(err).__name__}): BI"
                " transactions hold its tables; nothing was published, gold is unchanged"
            ) from err
    return PublishResult(
        run_id=run_id,
        published_at=published[0],
        tables=tuple(sorted(incoming)),
        row_counts=row_counts,
        replaced=tuple(sorted(replaced)),
    )


def clone_gold_to_next(
    settings: Settings, tables: Iterable[str], *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> dict[str, int]:
    """Empty ``gold_next``, then copy the published ``tables`` of gold into it.

    Run before every gold build, with the incremental gold models (see
    :func:`incremental_gold_models`): dbt's incremental run then starts from what BI reads.
    A table not yet in gold is skipped (the first build creates it in full).

    Returns:
        The rows copied per table.
    """
    wanted = sorted(set(tables))
    copied: dict[str, int] = {}
    with connect(settings, "transformer") as conn, conn.transaction():
        _lock(conn, lock_timeout_s)
        leftovers = _relations(conn, GOLD_NEXT)
        for name, kind in sorted(leftovers.items(), key=lambda item: _DROP_ORDER[item[1]]):
            conn.execute(
                sql.SQL("drop {kind} {relation}").format(
                    kind=sql.SQL(_KIND_WORD[kind]), relation=sql.Identifier(GOLD_NEXT, name)
                )
            )
        published = _relations(conn, GOLD)
        for name in wanted:
            if published.get(name) not in ("r", "p"):
                continue
            conn.execute(
                sql.SQL("create table {next} (like {gold} including all)").format(
                    next=sql.Identifier(GOLD_NEXT, name), gold=sql.Identifier(GOLD, name)
                )
            )
            cursor = conn.execute(
                sql.SQL("insert into {next} select * from {gold}").format(
                    next=sql.Identifier(GOLD_NEXT, name), gold=sql.Identifier(GOLD, name)
                )
            )
            copied[name] = cursor.rowcount
    return copied


def incremental_gold_models(settings: Settings, manifest: Path | None = None) -> list[str]:
    """The gold models dbt builds incrementally, from its manifest (after `dbt parse`)."""
    path = manifest or dbt_paths(settings)[0] / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no dbt manifest at {path}: run `dbt parse` first")
    nodes: dict[str, dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))["nodes"]
    found: set[str] = set()
    for node in nodes.values():
        config = node.get("config")
        if (
            node.get("resource_type") == "model"
            and node.get("schema") in (GOLD, GOLD_NEXT)
            and isinstance(config, dict)
            and config.get("materialized") == "incremental"
        ):
            found.add(str(node.get("alias") or node["name"]))
    return sorted(found)


def gold_checksums(settings: Settings, schema: str = GOLD) -> dict[str, str]:
    """Relation -> md5 over its column names and types and all its rows, in a stable order."""
    checksums: dict[str, str] = {}
    with connect(settings, "transformer") as conn, conn.transaction():
        for name in sorted(_relations(conn, schema)):
            columns = conn.execute(
                """
                select string_agg(
                    attribute.attname || ' '
                    || format_type(attribute.atttypid, attribute.atttypmod),
                    ', ' order by attribute.attnum
                )
                from pg_attribute as attribute
                where attribute.attrelid = to_regclass(%s) and attribute.attnum > 0
                    and not attribute.attisdropped
                """,
                (sql.Identifier(schema, name).as_string(conn),),
            ).fetchone()
            rows = conn.execute(
                sql.SQL(
                    "select md5(coalesce(string_agg(r::text, E'\\n' order by r::text), ''))"
                    " from {relation} as r"
                ).format(relation=sql.Identifier(schema, name))
            ).fetchone()
            assert columns is not None and rows is not None
            digest = hashlib.md5(usedforsecurity=False)
            digest.update(f"{columns[0]}\n{rows[0]}".encode())
            checksums[name] = digest.hexdigest()
    return checksums


def _lock(conn: psycopg.Connection, lock_timeout_s: float) -> None:
    """The publish lock, and a bound on waiting for any other lock, for this transaction."""
    conn.execute(
        "select set_config('lock_timeout', %s, true)",
        (f"{max(1, round(lock_timeout_s * 1000))}ms",),
    )
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (PUBLISH_LOCK,))


def _relations(conn: psycopg.Connection, schema: str) -> dict[str, str]:
    """Name -> relkind of the tables and views of a schema (partitions excluded)."""
    rows = conn.execute(
        """
        select relation.relname, relation.relkind
        from pg_class as relation
        inner join pg_namespace as namespace on namespace.oid = relation.relnamespace
        where namespace.nspname = %s and relation.relkind = any(%s) and not relation.relispartition
        """,
        (schema, list(_RELKINDS)),
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def _row_count(conn: psycopg.Connection, schema: str, name: str) -> int:
    row = conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name))
    ).fetchone()
    assert row is not None
    return int(row[0])
