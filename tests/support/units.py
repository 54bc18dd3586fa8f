"""How `make test` splits the suite between its two workers: whole units, longest first.

Each worker (pytest-xdist) starts embedded services of its own, and runs whole units of work
so that what a unit's fixtures build is built once: a unit is a test module, except for the
modules below that share a fixture. The flow tests share one warehouse per half (its first
nightly is a package fixture, kept only while the package's tests run back to back); the
admissions modules copy one built template. A worker takes the next unit when it is free;
handing out the longest first makes the last one to finish a short one.

(xdist's own `--dist loadgroup` would do the grouping, but with pytest 9 it no longer can:
it renames node ids, which pytest 9 no longer lets a plugin do. A scheduler of our own
groups by the same rule instead.)
"""

from __future__ import annotations

from typing import Any

import pytest

SHARED: dict[str, str] = {
    "tests/flows/test_backfill.py": "flows-reruns",
    "tests/flows/test_nightly.py": "flows-reruns",
    "tests/flows/test_failures.py": "flows-failures-stream",
    "tests/flows/test_vitals_flow.py": "flows-failures-stream",
    "tests/flows/test_deployment.py": "flows-failures-stream",
    "tests/dbt/test_admissions_models.py": "admissions-built",
    "tests/quality/test_gates.py": "admissions-built",
    "tests/quality/test_silver_gate.py": "admissions-built",
}
# Measured on the 2-core machine, longest first; units not named here follow, in file order.
LONGEST_FIRST: tuple[str, ...] = (
    "flows-reruns",
    "flows-failures-stream",
    "tests/bench/test_bench_smoke.py",
    "tests/dbt/test_labs_vitals_marts.py",
    "tests/dbt/test_patients_history.py",
    "admissions-built",
    "tests/dbt/test_incremental_staging.py",
    "tests/dbt/test_gold_marts.py",
    "tests/dbt/test_sql_style.py",
    "tests/ingest/vitals/test_drain.py",
)
_RANK = {unit: position for position, unit in enumerate(LONGEST_FIRST)}


def unit_of(nodeid: str) -> str:
    """The unit of work of a test, by its node id."""
    module = nodeid.split("::", 1)[0]
    return SHARED.get(module, module)


def rank(unit: str) -> int:
    """Where a unit comes in the order they are handed out."""
    return _RANK.get(unit, len(_RANK))


def scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scope scheduler, with our units as scopes and the collection's order kept."""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class UnitScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist has no stubs
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    # The collection is already in the order units should go out: keep it.
    config.option.loadscopereorder = False
    return UnitScheduling(config, log)
