"""Backfill and full refresh: the same pipeline over a range of days, or rebuilt from raw."""

from __future__ import annotations

from datetime import date

import pytest

from carehouse.core.settings import Settings
from carehouse.warehouse.publish import gold_checksums
from tests.support.flows import rows
from tests.support.warehouse import EXPECTED_GOLD, fetch_gold

pytestmark = pytest.mark.slow

RUN_LOG = "pipeline_run_audit"


def test_a_backfill_runs_each_day_in_order_and_repeats_safely(
    flow_env: Settings, first_night: object
) -> None:
    from flows.backfill import backfill

    days = [summary.business_date for summary in backfill(date(2026, 3, 19), date(2026, 3, 20))]
    assert days == [date(2026, 3, 19), date(2026, 3, 20)]
    after_once = {k: v for k, v in gold_checksums(flow_env).items() if k != RUN_LOG}
    again = backfill(date(2026, 3, 19), date(2026, 3, 20))
    assert [load.loaded for summary in again for load in summary.loads] == [0] * 6
    assert {k: v for k, v in gold_checksums(flow_env).items() if k != RUN_LOG} == after_once
    run_ids = [summary.run_id for summary in again]
    assert rows(
        flow_env,
        "select business_date, status from gold.pipeline_run_audit where run_id = any(%s)"
        " order by business_date",
        (run_ids,),
    ) == [(date(2026, 3, 19), "succeeded"), (date(2026, 3, 20), "succeeded")]
    with pytest.raises(ValueError, match="empty"):
        backfill(date(2026, 3, 20), date(2026, 3, 19))


def test_a_full_refresh_rebuilds_gold_from_raw_to_the_same_answer(
    flow_env: Settings, first_night: object
) -> None:
    from flows.full_refresh import full_refresh

    summary = full_refresh()
    assert summary.loads == []
    assert [(gate.layer, gate.passed) for gate in summary.gates] == [
        ("raw", True),
        ("silver", True),
        ("gold", True),
    ]
    assert fetch_gold(flow_env) == EXPECTED_GOLD
    assert rows(
        flow_env, "select status from gold.pipeline_run_audit where run_id = %s", (summary.run_id,)
    ) == [("succeeded",)]
