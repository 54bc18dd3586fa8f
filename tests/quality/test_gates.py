"""Soda gates on gold: pass on good data, fail loudly naming the check on bad data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from carehouse.core.environment import tool_environment
from carehouse.core.settings import PROJECT_ROOT, Settings
from carehouse.quality.gates import GateError, GateFailed, require_passed, verify_layer
from carehouse.warehouse.dbt import run_dbt
from tests.support.warehouse import BuiltTemplate, cloned_warehouse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def warehouse(settings: Settings, admissions_built: BuiltTemplate) -> Iterator[Settings]:
    """A database with a built gold layer (a copy of the built admissions template)."""
    with cloned_warehouse(settings, admissions_built.database, "soda") as isolated:
        yield isolated


# Gold tables fed only by sources this warehouse has no data from: their contracts warn,
# declaredly, that they are empty.
EMPTY_WITHOUT_THEIR_SOURCE = {
    "dim_patient", "fct_lab_results", "fct_vitals", "lab_abnormal_trends_weekly",
    "patient_vitals_hourly", "pipeline_run_audit",
}  # fmt: skip


def test_gold_gate_passes_on_good_data_and_writes_reports(warehouse: Settings) -> None:
    result = verify_layer(warehouse, "gold", "run-good")

    assert result.passed, result.errors
    assert result.errors == ()
    assert {check.outcome for check in result.checks} == {"pass", "warn"}
    assert {Path(c.contract).stem for c in result.warned_checks} == EMPTY_WITHOUT_THEIR_SOURCE
    assert {c.check_type for c in result.warned_checks} == {"row_count"}
    names = {check.check for check in result.checks}
    assert "Average LOS is not negative" in names
    assert "One row per department and admission month" in names
    assert result.report_json == warehouse.reports_dir / "run-good" / "gold.json"
    assert result.report_markdown == warehouse.reports_dir / "run-good" / "gold.md"
    report = json.loads(result.report_json.read_text())
    assert report["passed"] is True
    assert len(report["checks"]) == len(result.checks)
    row_count = next(
        c for c in report["checks"]
        if c["check_type"] == "row_count" and c["contract"].endswith("avg_los_by_department.yml")
    )  # fmt: skip
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
    # Named by the mart's grain keys: no patient data.
    assert result.failed_checks[0].sample_keys == ("department=ICU, admission_month=2026-01-01",)
    with pytest.raises(GateFailed, match="Average LOS is not negative") as failed:
        require_passed(result)
    assert "sample keys: (department=ICU, admission_month=2026-01-01)" in str(failed.value)
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
    assert all(e.startswith("contracts/gold/avg_los_by_department.yml") for e in result.errors)
    missing = [c for c in result.checks if c.contract.endswith("avg_los_by_department.yml")]
    # Only the catalog query for identifier columns runs without the table (and finds none).
    evaluated = {check.check for check in missing if check.outcome != "not_evaluated"}
    assert evaluated == {"No column named like a direct patient identifier"}


def test_gold_gate_verifies_another_schema_only_when_every_contract_can(
    warehouse: Settings,
) -> None:
    # gold_next holds nothing here: every contract verifies it, and every one fails.
    result = verify_layer(warehouse, "gold", "run-next", schema="gold_next")
    assert not result.passed
    assert {c.dataset.split("/")[2] for c in result.checks} == {"gold_next"}
    # raw contracts name their own schemas: verifying them "in gold_next" is refused.
    with pytest.raises(GateError, match="do not declare the variable 'schema'"):
        verify_layer(warehouse, "raw", "run-next", schema="gold_next")


def test_unsafe_variable_values_are_refused(warehouse: Settings) -> None:
    with pytest.raises(GateError, match="letters, digits"):
        verify_layer(warehouse, "raw", "run-x", variables={"admissions_load_id": "1' or '1'='1"})
    with pytest.raises(GateError, match="not as variable 'schema'"):
        verify_layer(warehouse, "gold", "run-x", variables={"schema": "gold_next"})
    with pytest.raises(GateError, match="plain lower-case name"):
        verify_layer(warehouse, "gold", "run-x", schema="Gold Next")


def test_every_verification_is_recorded_in_the_audit_schema(warehouse: Settings) -> None:
    result = verify_layer(warehouse, "gold", "run-audited")
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        runs = conn.execute(
            "select gate_run_id, passed, checks, failed, warned, contracts from audit.gate_runs"
            " where run_id = 'run-audited'"
        ).fetchall()
        (gate_run_id, passed, checks, failed, warned, contracts) = runs[0]
        rows = conn.execute(
            "select contract, check_name, outcome, measured_value, threshold"
            " from audit.gate_checks where gate_run_id = %s",
            (gate_run_id,),
        ).fetchall()
    assert len(runs) == 1
    assert (passed, checks, failed, warned) == (True, len(result.checks), 0, 6)
    assert contracts == list(result.contracts)
    assert len(rows) == len(result.checks)
    assert (
        "contracts/gold/avg_los_by_department.yml", "Average LOS is not negative", "pass", 0, "= 0"
    ) in rows  # fmt: skip


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


def test_every_query_of_the_bi_guide_runs_as_the_bi_role(warehouse: Settings) -> None:
    guide = (PROJECT_ROOT / "docs" / "bi.md").read_text(encoding="utf-8")
    queries = re.findall(r"```sql\n(.*?)```", guide, flags=re.DOTALL)
    with psycopg.connect(warehouse.dsn("bi"), autocommit=True) as conn:
        relations = {
            name
            for (name,) in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'gold'"
            ).fetchall()
        }
        for query in queries:
            conn.execute(query)
    # One section, and so one example, per gold table or view.
    assert set(re.findall(r"^### `gold\.(\w+)`", guide, flags=re.MULTILINE)) == relations
