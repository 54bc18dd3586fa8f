"""Isolated runs for `carehouse bench`: one database, dbt target and topic per measured run.

Several runs share the machine (the nightly batch runs while the latency run
refreshes gold), so each gets its own database on the same server, its own
`home` (dbt's target and logs, gate reports) and its own topic: no run reads or
overwrites another's state. Every address is resolved here, once, so a run's
settings no longer depend on the embedded services' state files under `home`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from psycopg import sql
from pydantic import SecretStr

from carehouse.core.bootstrap import bootstrap
from carehouse.core.database import connect
from carehouse.core.environment import tool_environment
from carehouse.core.settings import Settings

DATABASE_PREFIX = "carehouse_bench_"


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


def fresh_database(settings: Settings, name: str) -> None:
    """Drop and re-create one benchmark database and bootstrap it (roles, schemas, grants)."""
    if not name.startswith(DATABASE_PREFIX):
        raise ValueError(f"benchmark databases are named {DATABASE_PREFIX}*, not {name!r}")
    identifier = sql.Identifier(name)
    with connect(settings, "admin", autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(identifier))
        conn.execute(sql.SQL("create database {}").format(identifier))
    bootstrap(settings.for_database(name))


def drop_database(settings: Settings, name: str) -> None:
    """Remove a benchmark database once its figures are taken."""
    with connect(settings, "admin", autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def run_environment(settings: Settings) -> dict[str, str]:
    """The environment of a subprocess that must build exactly these settings."""
    env = {
        **os.environ,
        **tool_environment(settings),
        "CAREHOUSE_VITALS_TOPIC": settings.vitals_topic,
        "PREFECT_HOME": str(settings.home / "prefect"),
    }
    settings.home.mkdir(parents=True, exist_ok=True)
    return env


def start_stage(settings: Settings, stage: str, data_dir: Path, out: Path) -> subprocess.Popen[str]:
    """Start one stage in a fresh interpreter (see `carehouse.bench.measure`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    log = (out.parent / f"{out.stem}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "carehouse.bench.measure", stage, str(data_dir), str(out)],
        env=run_environment(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def finish_stage(process: subprocess.Popen[str], stage: str, out: Path) -> dict[str, Any]:
    """Wait for a stage process; its figures, or a RuntimeError quoting its log."""
    code = process.wait()
    log = out.parent / f"{out.stem}.log"
    if code != 0 or not out.exists():
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise RuntimeError(f"bench stage {stage} failed (exit {code}):\n{tail}")
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def run_stage(settings: Settings, stage: str, data_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Run one stage in a fresh process and return its figures."""
    out = out_dir / f"{stage}.json"
    return finish_stage(start_stage(settings, stage, data_dir, out), stage, out)
