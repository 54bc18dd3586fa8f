"""Freshness of gold: every table published within its SLA, or the check fails naming it.

A gold table's age is the time since the last publish that moved it into gold
(``audit.publishes``). Its SLA comes from the YAML at ``Settings.freshness_file``
(``default_hours`` for every table, ``tables: {name: hours}`` to override); a table named
there but absent from gold is stale too (it was dropped or never built). The vitals stream
keeps two tables fresher than this between nightly runs; their SLA is still the nightly's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from carehouse.core.database import connect
from carehouse.core.settings import Settings

GOLD = "gold"


@dataclass(frozen=True)
class Slas:
    """Freshness SLA per gold table."""

    default: timedelta
    tables: dict[str, timedelta]

    def of(self, table: str) -> timedelta:
        """The SLA of one table."""
        return self.tables.get(table, self.default)


@dataclass(frozen=True)
class TableFreshness:
    """One gold table's last publish, age and SLA."""

    table: str
    published_at: datetime | None  # None: never published (or missing from gold)
    age: timedelta | None
    sla: timedelta

    @property
    def stale(self) -> bool:
        """Older than its SLA, or never published."""
        return self.age is None or self.age > self.sla

    def describe(self) -> str:
        """`gold.fct_labs: 30.5 h old, SLA 26 h`."""
        if self.age is None:
            return f"{GOLD}.{self.table}: never published, SLA {_hours(self.sla)} h"
        return f"{GOLD}.{self.table}: {_hours(self.age)} h old, SLA {_hours(self.sla)} h"


class StaleGold(RuntimeError):
    """A gold table is older than its SLA; the message names each and its age."""


def load_slas(path: Path) -> Slas:
    """Read the SLA file; an unreadable one is an error, never a silent default."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or "default_hours" not in data:
        raise ValueError(f"{path}: expected a mapping with default_hours (and tables)")
    tables = data.get("tables") or {}
    if not isinstance(tables, dict):
        raise ValueError(f"{path}: tables must map a gold table name to hours")
    return Slas(
        default=timedelta(hours=float(data["default_hours"])),
        tables={str(name): timedelta(hours=float(hours)) for name, hours in tables.items()},
    )


def gold_freshness(
    settings: Settings, slas: Slas | None = None, now: datetime | None = None
) -> list[TableFreshness]:
    """Every gold relation and every table with its own SLA: last publish, age, SLA."""
    slas = slas or load_slas(settings.freshness_file)
    with connect(settings, "transformer") as conn:
        relations = conn.execute(
            """
            select relation.relname
            from pg_class as relation
            inner join pg_namespace as namespace on namespace.oid = relation.relnamespace
            where namespace.nspname = %s and relation.relkind in ('r', 'p', 'v', 'm')
                and not relation.relispartition
            """,
            (GOLD,),
        ).fetchall()
        published: dict[str, datetime] = {}
        has_publishes = conn.execute("select to_regclass('audit.publishes') is not null").fetchone()
        if has_publishes and has_publishes[0]:
            rows = conn.execute(
                """
                select published.table_name, max(publishes.published_at)
                from audit.publishes as publishes
                cross join lateral unnest(publishes.tables) as published (table_name)
                group by published.table_name
                """
            ).fetchall()
            published = {str(name): at for name, at in rows}
        database_now = conn.execute("select now()").fetchone()
    assert database_now is not None
    clock: datetime = now or database_now[0]
    names = sorted({str(row[0]) for row in relations} | set(slas.tables))
    present = {str(row[0]) for row in relations}
    results = []
    for name in names:
        at = published.get(name) if name in present else None
        results.append(
            TableFreshness(
                table=name,
                published_at=at,
                age=None if at is None else clock - at,
                sla=slas.of(name),
            )
        )
    return results


def require_fresh(results: list[TableFreshness]) -> list[TableFreshness]:
    """Raise StaleGold naming every stale table and its age; else return the results."""
    stale = [result for result in results if result.stale]
    if stale:
        raise StaleGold(
            "gold freshness SLA missed:\n" + "\n".join(f"  - {r.describe()}" for r in stale)
        )
    return results


def as_json(results: list[TableFreshness]) -> dict[str, str]:
    """Table -> last publish instant (ISO 8601, UTC) for the run's audit row."""
    return {
        result.table: result.published_at.astimezone(UTC).isoformat()
        for result in results
        if result.published_at is not None
    }


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f}"
