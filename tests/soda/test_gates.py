"""Soda gates on gold: pass on good data, fail loudly naming the check on bad data."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from carehouse.environment import tool_environment
from carehouse.gates import GateFailed, require_passed, verify_layer
from carehouse.settings import Settings
from carehouse.transform import run_dbt
from tests.dbt.warehouse import ADMISSIONS, isolated_warehouse, load_raw_admissions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    """A database with a built gold layer."""
    with isolated_warehouse(settings, "soda") as isolated:
        load_raw_admissions(isolated, ADMISSIONS)
        run_dbt(isolated, ["build"])
        yield isolated


def test_gold_gate_passes_on_good_data_and_writes_reports(warehouse: Settings) -> None:
    result = verify_layer(warehouse, "gold", "run-good")

    assert result.passed, result.errors
    assert result.errors == ()
    assert {check.outcome for check in result.checks} == {"pass"}
    names = {check.check for check in result.checks}
    assert "Average LOS is not negative" in names
    assert "One row per department and admission month" in names
    assert result.report_json == warehouse.reports_dir / "run-good" / "gold.json"
    assert result.report_markdown == warehouse.reports_dir / "run-good" / "gold.md"
    report = json.loads(result.report_json.read_text())
    assert report["passed"] is True
    assert len(report["checks"]) == len(result.checks)
    row_count = next(c for c in report["checks"] if c["check_type"] == "row_count")
    assert row_count["measured_value"] == 5
    # Reports carry check names and counts, never row values.
    text = result.report_json.read_text() + result.report_markdown.read_text()
    for value in ("CARDIOLOGY", "P1", "A1", "5.33"):
        assert value not in text


def test_gold_gate_fails_naming_the_check_when_a_bad_row_reaches_gold(
    warehouse: Settings,
) -> None:
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        conn.execute(
            "update gold.avg_los_by_department set avg_los_days = -1"
            " where department = 'ICU' and admission_month = '2026-01-01'"
        )
    try:
        result = verify_layer(warehouse, "gold", "run-bad")
    finally:
        run_dbt(warehouse, ["build", "--select", "avg_los_by_department"])

    assert not result.passed
    failing = [(c.check, c.column, c.measured_value) for c in result.failed_checks]
    assert failing == [("Average LOS is not negative", "avg_los_days", 1)]
    with pytest.raises(GateFailed, match="Average LOS is not negative"):
        require_passed(result)
    assert result.report_markdown is not None
    assert "FAILED" in result.report_markdown.read_text()


def test_gate_fails_when_gold_is_missing(warehouse: Settings) -> None:
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        conn.execute("alter table gold.avg_los_by_department rename to avg_los_moved")
    try:
        result = verify_layer(warehouse, "gold", "run-missing")
    finally:
        with psycopg.connect(warehouse.dsn("transformer")) as conn:
            conn.execute("alter table gold.avg_los_moved rename to avg_los_by_department")

    assert not result.passed
    assert result.errors
    assert {check.outcome for check in result.checks} == {"not_evaluated"}


def test_soda_cli_verifies_the_gold_contract_from_the_shell(warehouse: Settings) -> None:
    soda = Path(sys.executable).parent / "soda"
    contract = warehouse.soda_dir / "contracts" / "gold" / "avg_los_by_department.yml"
    completed = subprocess.run(
        [
            str(soda), "contract", "verify",
            "--data-source", str(warehouse.soda_dir / "datasource.yml"),
            "--contract", str(contract),
        ],
        env=tool_environment(warehouse),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Failed         |  0" in completed.stdout
