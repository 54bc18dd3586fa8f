"""Isolated benchmark runs: one database, dbt target and topic per measured run.

Several runs share the machine (the nightly batch runs while the latency run
refreshes gold), so each gets its own database on the same server, its own
`home` (dbt's target and logs, gate reports) and its own topic: no run reads or
overwrites another's state. Every address is resolved here, once, so a run's
settings no longer depend on the embedded services' state files under `home`.
"""

from __future__ import annotations

from pathlib import Path

from psycopg import sql
from pydantic import SecretStr

from carehouse.core.bootstrap import bootstrap
from carehouse.core.database import connect
from carehouse.core.settings import Settings

# `bench ingest` and `bench incremental` load one database; `bench` one per measured run.
BENCH_DATABASE = "carehouse_bench"
DATABASE_PREFIX = f"{BENCH_DATABASE}_"


def isolated(
    settings: Settings, *, database: str, home: Path, landing_dir: Path, topic: str
) -> Settings:
    """The same server, broker and Prefect, with this run's database, home and topic."""
    on_database = settings.for_database(database)
    return on_database.model_copy(
        update={
            "home": home,
            "landing_dir": landing_dir,
            "vitals_topic": topic,
            "embedded": "",  # every address below is explicit
            "kafka_bootstrap": settings.kafka,
            "prefect_api_url": settings.prefect_api,
            "patient_key_salt": SecretStr(settings.patient_key_secret()),
        }
    )


def fresh_database(settings: Settings, name: str) -> Settings:
    """Drop and re-create one benchmark database, bootstrap it (roles, schemas, grants).

    Returns the settings on that database.
    """
    if name != BENCH_DATABASE and not name.startswith(DATABASE_PREFIX):
        raise ValueError(
            f"benchmark databases are {BENCH_DATABASE} or {DATABASE_PREFIX}*, not {name!r}"
        )
    identifier = sql.Identifier(name)
    with connect(settings, "admin", autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(identifier))
        conn.execute(sql.SQL("create database {}").format(identifier))
    on_database = settings.for_database(name)
    bootstrap(on_database)
    return on_database


def drop_database(settings: Settings, name: str) -> None:
    """Remove a benchmark database once its figures are taken."""
    with connect(settings, "admin", autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
