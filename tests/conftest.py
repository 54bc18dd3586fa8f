"""Test session: real embedded Postgres, Tansu broker and Prefect server, started once.

Everything lives in a temporary CAREHOUSE_HOME on free ports; nothing touches
the network or the developer's own `.carehouse/`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from carehouse.core.environment import TELEMETRY_OFF
from carehouse.core.settings import Settings
from carehouse.warehouse.dbt import run_dbt
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


# `make test` runs the suite on two workers (pytest-xdist, `--dist loadgroup`), each with
# embedded services of its own. A module is one unit of work, so that what its fixtures build
# is built once; these modules share a unit because they share a fixture: the flow tests
# one warehouse per half (its first nightly is a package fixture, kept only while the
# package's tests run back to back), the admissions modules one built template.
SHARED_UNITS: dict[str, str] = {
    "tests/flows/test_backfill.py": "flows-reruns",
    "tests/flows/test_nightly.py": "flows-reruns",
    "tests/flows/test_failures.py": "flows-failures-stream",
    "tests/flows/test_vitals_flow.py": "flows-failures-stream",
    "tests/flows/test_deployment.py": "flows-failures-stream",
    "tests/dbt/test_admissions_models.py": "admissions-built",
    "tests/quality/test_gates.py": "admissions-built",
    "tests/quality/test_silver_gate.py": "admissions-built",
}
# Units in the order they are handed out, longest first (measured): each worker takes the
# next when it is free, so the last to finish is a short one.
LONGEST_FIRST: tuple[str, ...] = (
    "flows-reruns",
    "flows-failures-stream",
    "tests/bench/test_bench_smoke.py",
    "tests/dbt/test_patients_history.py",
    "tests/dbt/test_labs_vitals_marts.py",
    "admissions-built",
    "tests/dbt/test_incremental_staging.py",
    "tests/dbt/test_gold_marts.py",
    "tests/dbt/test_sql_style.py",
    "tests/ingest/vitals/test_drain.py",
)


def _unit(item: pytest.Item) -> str:
    module = item.nodeid.split("::", 1)[0]
    return SHARED_UNITS.get(module, module)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by what they need and group them into units of work, longest first.

    Every test that uses the embedded services (through `settings`) is marked `services`:
    `pytest -m "not services"` is then the inner loop, what runs without starting anything.
    Derived from the fixtures a test uses, directly or through other fixtures, so a new test
    cannot forget its mark; a test that starts services another way carries it by hand.
    """
    for item in items:
        if "settings" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.services)
        item.add_marker(pytest.mark.xdist_group(_unit(item)))
    rank = {unit: position for position, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_unit(item), len(rank)))


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
