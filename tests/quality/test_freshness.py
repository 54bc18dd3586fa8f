"""Freshness of gold: each table's age against its SLA, a stale one named with its age."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from carehouse.core.settings import PROJECT_ROOT, Settings
from carehouse.quality.freshness import StaleGold, gold_freshness, load_slas, require_fresh
from carehouse.warehouse.publish import GOLD_NEXT, publish_gold
from tests.support.handmade import build_gold, department_rows, los_rows
from tests.support.warehouse import isolated_warehouse


@pytest.fixture(scope="module")
def published(settings: Settings) -> Iterator[Settings]:
    """A warehouse whose gold was just published: two hand-made tables and fct_admissions."""
    with isolated_warehouse(settings, "freshness") as warehouse:
        build_gold(warehouse, GOLD_NEXT, los=los_rows(2), departments=department_rows())
        with psycopg.connect(warehouse.dsn("transformer")) as conn:
            # Freshness reads only which tables each publish moved: its columns do not matter.
            conn.execute("create table gold_next.fct_admissions (admission_id text primary key)")
        publish_gold(warehouse, "run-freshness")
        yield warehouse


def test_the_project_sla_file_reads(tmp_path: Path) -> None:
    slas = load_slas(PROJECT_ROOT / "freshness.yml")
    assert slas.default == timedelta(hours=26)
    broken = tmp_path / "freshness.yml"
    broken.write_text("tables: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="default_hours"):
        load_slas(broken)


def test_a_table_past_its_sla_or_missing_fails_naming_it_and_its_age(
    published: Settings, tmp_path: Path
) -> None:
    sla_file = tmp_path / "freshness.yml"
    sla_file.write_text(
        "default_hours: 48\ntables:\n  avg_los_by_department: 1\n  fct_retired: 48\n",
        encoding="utf-8",
    )
    slas = load_slas(sla_file)
    fresh = gold_freshness(published, slas)
    # Just published: only the table gold does not have is stale.
    assert [result.table for result in fresh if result.stale] == ["fct_retired"]

    # Three hours later (no publish meanwhile): one table is past its one-hour SLA.
    later = datetime.now(UTC) + timedelta(hours=3)
    results = {result.table: result for result in gold_freshness(published, slas, now=later)}
    assert results["avg_los_by_department"].stale
    assert not results["fct_admissions"].stale
    # A table the SLA file names but gold does not have is stale: never published.
    assert results["fct_retired"].stale and results["fct_retired"].age is None
    with pytest.raises(StaleGold) as raised:
        require_fresh(list(results.values()))
    message = str(raised.value)
    assert re.search(r"gold\.avg_los_by_department: 3\.\d h old, SLA 1\.0 h", message)
    assert "gold.fct_retired: never published" in message
    assert "fct_admissions" not in message
