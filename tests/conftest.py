"""Test session: real embedded Postgres, Tansu broker and Prefect server, started once.

Everything lives in a temporary CAREHOUSE_HOME on free ports; nothing touches
the network or the developer's own `.carehouse/`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from carehouse.core.environment import TELEMETRY_OFF
from carehouse.core.settings import Settings
from carehouse.warehouse.dbt import run_dbt
from tests.support import units
from tests.support.warehouse import (
    ADMISSIONS,
    BuiltTemplate,
    isolated_warehouse,
    load_raw_admissions,
)

# Set before any test module imports Prefect, dbt or dlt (they read the
# environment once, at import).
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="carehouse-test-"))
os.environ.update(
    {
        "CAREHOUSE_HOME": str(_SESSION_DIR / "home"),
        "CAREHOUSE_LANDING_DIR": str(_SESSION_DIR / "landing"),
        "PREFECT_HOME": str(_SESSION_DIR / "home" / "prefect"),
        # The suite runs on as many workers as cores (make test): one dbt thread each. On the
        # tests' tiny tables dbt's work is Python's, and more threads only contend for the GIL.
        "CAREHOUSE_DBT_THREADS": "1",
        **TELEMETRY_OFF,
    }
)
(_SESSION_DIR / "home" / "prefect").mkdir(parents=True)
for _name in (
    "CAREHOUSE_DATABASE_URL",
    "CAREHOUSE_KAFKA_BOOTSTRAP",
    "PREFECT_API_URL",
    "CAREHOUSE_EMBEDDED",
    "CAREHOUSE_LOADER_PASSWORD",
    "CAREHOUSE_TRANSFORMER_PASSWORD",
    "CAREHOUSE_BI_PASSWORD",
):
    os.environ.pop(_name, None)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark every test that uses the embedded services (through `settings`) as `services`.

    `pytest -m "not services"` is then the inner loop: what runs without starting anything.
    Derived from the fixtures a test uses, directly or through other fixtures, so a new test
    cannot forget its mark; a test that starts services another way carries it by hand.
    """
    if "settings" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.services)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The units of work longest first; a unit's tests stay together, in their order."""
    items.sort(key=lambda item: units.rank(units.unit_of(item.nodeid)))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: `make test` runs two workers
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Hand out whole units of work (tests.support.units), longest first."""
    return units.scheduler(config, log)


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """Settings of the running embedded services, bootstrapped; stopped at session end."""
    from carehouse.services.lifecycle import down, up

    ready = up(Settings())
    try:
        # Flows under test find the services through CAREHOUSE_HOME; Prefect has
        # already read its settings at import, so point it at the server here.
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: ready.prefect_api}):
            yield ready
            _flush_prefect_clients()
    finally:
        down(ready)


def _flush_prefect_clients() -> None:
    """Send buffered logs and events before the server stops, so none is left to fail."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


@pytest.fixture()
def admin_conn(settings: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit admin connection."""
    with psycopg.connect(settings.dsn("admin"), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def admissions_built(settings: Settings) -> Iterator[BuiltTemplate]:
    """The hand-checked raw admissions loaded and built by one `dbt build` (a template).

    Modules that start from this warehouse take a copy (tests.support.warehouse.
    cloned_warehouse) instead of building it again.
    """
    with isolated_warehouse(settings, "template_admissions") as template:
        load_raw_admissions(template, ADMISSIONS)
        build = run_dbt(template, ["build"])
        yield BuiltTemplate(template.pg_address.database, build)
