"""Verify-then-publish: only a gold build that passed its gate reaches BI, whole, at once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from carehouse.core.settings import Role, Settings
from carehouse.quality.gates import GateResult, verify_layer
from carehouse.warehouse.publish import (
    GOLD_NEXT,
    PublishError,
    PublishResult,
    clone_gold_to_next,
    gold_checksums,
    incremental_gold_models,
    publish_gold,
)
from tests.support.handmade import (
    build_gold,
    department_rows,
    gold_totals,
    los_rows,
    soda_dir_with_gold_contracts,
)
from tests.support.warehouse import isolated_warehouse

pytestmark = pytest.mark.slow


@pytest.fixture()
def warehouse(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A fresh database whose Soda gold layer holds the contracts of the hand-made tables."""
    with isolated_warehouse(settings, "publish") as isolated:
        yield isolated.model_copy(update={"soda_dir": soda_dir_with_gold_contracts(tmp_path)})


def gate_then_publish(settings: Settings, run_id: str) -> tuple[GateResult, PublishResult | None]:
    """What the nightly flow does: verify gold_next, publish only when the gate passed."""
    result = verify_layer(settings, "gold", run_id, schema=GOLD_NEXT)
    if not result.passed:
        return result, None
    return result, publish_gold(settings, run_id)


def query(settings: Settings, role: Role, text: str) -> list[tuple[object, ...]]:
    with psycopg.connect(settings.dsn(role)) as conn:
        return conn.execute(text).fetchall()


def test_a_good_batch_is_published_and_readable_by_bi(warehouse: Settings) -> None:
    build_gold(warehouse, GOLD_NEXT, los=los_rows(3), departments=department_rows())

    gate, published = gate_then_publish(warehouse, "run-good")

    assert gate.passed, gate.errors
    assert gate.schema == GOLD_NEXT
    assert {c.dataset.split("/")[2] for c in gate.checks} == {GOLD_NEXT}
    assert published is not None
    assert published.tables == ("avg_los_by_department", "dim_department")
    assert published.row_counts == {"avg_los_by_department": 12, "dim_department": 4}
    assert published.replaced == ()
    with psycopg.connect(warehouse.dsn("bi")) as bi:
        assert gold_totals(bi) == (48, 40)
    # gold_next is emptied by the move; the next build starts from scratch (or a clone).
    assert gold_checksums(warehouse, GOLD_NEXT) == {}
    publishes = query(
        warehouse, "transformer", "select run_id, tables, row_counts from audit.publishes"
    )
    assert publishes == [
        ("run-good", ["avg_los_by_department", "dim_department"],
         {"avg_los_by_department": 12, "dim_department": 4}),
    ]  # fmt: skip
    assert query(
        warehouse,
        "transformer",
        "select layer, verified_schema, passed, checks, failed from audit.gate_runs",
    ) == [("gold", GOLD_NEXT, True, len(gate.checks), 0)]


def test_a_bad_batch_fails_the_gate_names_the_check_and_leaves_gold_unchanged(
    warehouse: Settings,
) -> None:
    build_gold(warehouse, GOLD_NEXT, los=los_rows(3), departments=department_rows())
    gate_then_publish(warehouse, "run-1")
    published = gold_checksums(warehouse)
    bad = los_rows(3, avg_los="4.00")
    bad[5] = (*bad[5][:4], -2, *bad[5][5:])  # a negative average LOS for ICU, March
    build_gold(warehouse, GOLD_NEXT, los=bad, departments=department_rows(beds=12))

    gate, publish = gate_then_publish(warehouse, "run-bad")

    assert publish is None
    assert not gate.passed
    failing = [(c.check, c.column, c.measured_value, c.sample_keys) for c in gate.failed_checks]
    assert failing == [
        ("Average LOS is not negative", "avg_los_days", 1,
         ("department=ICU, admission_month=2026-03-01",)),
    ]  # fmt: skip
    assert gold_checksums(warehouse) == published
    assert gate.report_markdown is not None
    report = gate.report_markdown.read_text()
    assert "## Failing checks" in report
    assert "Average LOS is not negative [fail]" in report
    assert "sample keys: (department=ICU, admission_month=2026-03-01)" in report
    # The audit holds the same verdict, check by check.
    rows = query(
        warehouse,
        "transformer",
        "select r.run_id, r.passed, c.check_name, c.outcome, c.measured_value,"
        " c.diagnostics -> 'sample_keys'"
        " from audit.gate_runs as r join audit.gate_checks as c using (gate_run_id)"
        " where c.outcome <> 'pass' order by r.gate_run_id",
    )
    assert rows == [
        ("run-bad", False, "Average LOS is not negative", "fail", 1,
         ["department=ICU, admission_month=2026-03-01"]),
    ]  # fmt: skip


def test_a_drop_of_more_than_half_the_rows_fails_the_next_publish(warehouse: Settings) -> None:
    build_gold(warehouse, GOLD_NEXT, los=los_rows(4), departments=department_rows())
    first, _ = gate_then_publish(warehouse, "run-1")
    drop_check = "At least half the rows of the last publish (percent of them)"
    # First publish: nothing to compare with, the check reports 100%.
    assert [c.measured_value for c in first.checks if c.check == drop_check] == [100, 100]

    # Exactly half is allowed ...
    build_gold(warehouse, GOLD_NEXT, los=los_rows(2), departments=department_rows())
    second, published = gate_then_publish(warehouse, "run-2")
    assert second.passed, [c.check for c in second.failed_checks]
    assert published is not None

    # ... a quarter of the rows of the last publish is not.
    build_gold(warehouse, GOLD_NEXT, los=los_rows(2)[:2], departments=department_rows())
    third, published = gate_then_publish(warehouse, "run-3")

    assert published is None
    assert [(c.contract, c.check, c.measured_value) for c in third.failed_checks] == [
        ("contracts/gold/avg_los_by_department.yml", drop_check, 25),
    ]
    assert third.report_json is not None
    assert json.loads(third.report_json.read_text())["passed"] is False


def test_bi_sees_the_old_gold_or_the_new_never_a_mix(
    settings: Settings, warehouse: Settings
) -> None:
    build_gold(warehouse, GOLD_NEXT, los=los_rows(3), departments=department_rows(beds=10))
    gate_then_publish(warehouse, "run-old")
    build_gold(
        warehouse, GOLD_NEXT, los=los_rows(3, admissions=5), departments=department_rows(beds=20)
    )
    old, new = (48, 40), (60, 80)

    outcome: dict[str, object] = {}

    def publish() -> None:
        try:
            outcome["result"] = publish_gold(warehouse, "run-new", lock_timeout_s=30)
        except PublishError as err:  # pragma: no cover - reported by the assertion below
            outcome["error"] = err

    with psycopg.connect(warehouse.dsn("bi")) as bi:
        bi.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        assert gold_totals(bi) == old
        publisher = threading.Thread(target=publish)
        publisher.start()
        _wait_for_lock_wait(settings, warehouse)
        # A BI query arriving now waits for the publish too, then sees the whole new gold.
        late: dict[str, tuple[int, int]] = {}

        def read_late() -> None:
            with psycopg.connect(warehouse.dsn("bi"), autocommit=True) as conn:
                late["totals"] = gold_totals(conn)

        reader = threading.Thread(target=read_late)
        reader.start()
        time.sleep(0.5)
        # The open transaction still reads the old gold, both tables, while the publish waits.
        assert gold_totals(bi) == old
        assert publisher.is_alive()
        bi.commit()
    publisher.join(30)
    reader.join(30)

    assert "error" not in outcome
    assert late["totals"] == new
    with psycopg.connect(warehouse.dsn("bi")) as bi:
        assert gold_totals(bi) == new


def test_a_publish_that_cannot_lock_gold_in_time_changes_nothing(warehouse: Settings) -> None:
    build_gold(warehouse, GOLD_NEXT, los=los_rows(3), departments=department_rows())
    gate_then_publish(warehouse, "run-1")
    build_gold(warehouse, GOLD_NEXT, los=los_rows(3, admissions=5), departments=department_rows())
    published, waiting = gold_checksums(warehouse), gold_checksums(warehouse, GOLD_NEXT)

    with psycopg.connect(warehouse.dsn("bi")) as bi:
        gold_totals(bi)  # holds the gold tables until the transaction ends
        with pytest.raises(PublishError, match="nothing was published, gold is unchanged"):
            publish_gold(warehouse, "run-2", lock_timeout_s=0.5)

    assert gold_checksums(warehouse) == published
    assert gold_checksums(warehouse, GOLD_NEXT) == waiting
    assert query(warehouse, "transformer", "select run_id from audit.publishes") == [("run-1",)]


def test_views_move_with_their_tables(warehouse: Settings) -> None:
    build_gold(warehouse, GOLD_NEXT, los=los_rows(1), departments=department_rows())
    view = sql.SQL("create view {view} as select department, bed_capacity from {table}").format(
        view=sql.Identifier(GOLD_NEXT, "department_beds"),
        table=sql.Identifier(GOLD_NEXT, "dim_department"),
    )
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        conn.execute(view)
    publish_gold(warehouse, "run-1")
    # The second publish replaces the view and the table it reads.
    build_gold(warehouse, GOLD_NEXT, los=los_rows(1), departments=department_rows(beds=3))
    with psycopg.connect(warehouse.dsn("transformer")) as conn:
        conn.execute(view)

    result = publish_gold(warehouse, "run-2")

    assert result.replaced == ("avg_los_by_department", "department_beds", "dim_department")
    assert query(warehouse, "bi", "select sum(bed_capacity) from gold.department_beds") == [(12,)]


def test_an_empty_gold_next_publishes_nothing(warehouse: Settings) -> None:
    with pytest.raises(PublishError, match="gold_next is empty"):
        publish_gold(warehouse, "run-empty")


def test_clone_gives_incremental_models_their_published_state(warehouse: Settings) -> None:
    build_gold(warehouse, GOLD_NEXT, los=los_rows(2), departments=department_rows())
    publish_gold(warehouse, "run-1")
    # Leftovers of a build whose gate failed must not survive into the next build.
    build_gold(warehouse, GOLD_NEXT, los=los_rows(1), departments=department_rows(beds=1))

    copied = clone_gold_to_next(warehouse, ["avg_los_by_department", "not_published_yet"])

    assert copied == {"avg_los_by_department": 8}
    assert gold_checksums(warehouse, GOLD_NEXT) == {
        "avg_los_by_department": gold_checksums(warehouse)["avg_los_by_department"]
    }
    # The copy keeps the table's constraints, as dbt's incremental merge expects.
    keys = query(
        warehouse,
        "transformer",
        "select count(*) from pg_constraint where contype = 'p'"
        " and conrelid = 'gold_next.avg_los_by_department'::regclass",
    )
    assert keys == [(1,)]


def test_incremental_gold_models_are_read_from_the_dbt_manifest(
    warehouse: Settings, tmp_path: Path
) -> None:
    def node(name: str, schema: str, materialized: str) -> dict[str, object]:
        return {
            "resource_type": "model",
            "name": name,
            "alias": name,
            "schema": schema,
            "config": {"materialized": materialized},
        }

    manifest = tmp_path / "manifest.json"
    nodes = [
        node("fct_vitals", "gold", "incremental"),
        node("fct_lab_results", "gold_next", "incremental"),
        node("fct_admissions", "gold", "table"),
        node("int_events", "silver", "incremental"),
    ]
    manifest.write_text(json.dumps({"nodes": {f"model.carehouse.{n['name']}": n for n in nodes}}))

    assert incremental_gold_models(warehouse, manifest) == ["fct_lab_results", "fct_vitals"]


def _wait_for_lock_wait(admin: Settings, warehouse: Settings) -> None:
    """Until the publish's session waits on a lock held by the BI transaction."""
    database = warehouse.pg_address.database
    deadline = time.monotonic() + 15
    with psycopg.connect(admin.dsn("admin"), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select count(*) from pg_stat_activity where datname = %s"
                " and usename = 'carehouse_transformer' and wait_event_type = 'Lock'",
                (database,),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the publish never waited for the BI transaction")
