"""The batch pipeline shared by `nightly` and `full_refresh`: one run, recorded whole.

load (files due by the business date) -> raw gate -> [warehouse guard: [gold guard: the
vitals stream's chain below gold] -> dbt staging, snapshots, silver -> silver gate -> gold
into gold_next -> gold gate -> [gold guard: publish]] -> freshness -> counts. The vitals
stream refreshes gold all along but for those two short spans (see carehouse.warehouse.guards).

The run's row in ``audit.pipeline_runs`` is written when it starts and again when it ends,
also when it fails (naming the failed step), and ``gold.pipeline_run_audit`` is then
refreshed to that final record; the Prefect artifacts (summary, counts, gate reports) are
published either way.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from datetime import date
from typing import Any

from carehouse.audit import runs as run_audit
from carehouse.core.settings import Settings
from carehouse.ingest.batch import BATCH_SOURCES
from carehouse.quality.freshness import as_json
from carehouse.quality.gates import GateFailed
from carehouse.warehouse.dbt import remove_lane
from carehouse.warehouse.guards import gold_guard, warehouse_guard
from carehouse.warehouse.inventory import rows_by_layer
from flows.artifacts import publish_run_artifacts
from flows.summary import RunSummary, current_run_id
from flows.tasks import (
    build_gold_next_task,
    build_silver_task,
    build_vitals_staging_task,
    count_rows_task,
    freshness_task,
    gate_task,
    load_task,
    publish_task,
    record_run_task,
    refresh_run_audit_task,
)

log = logging.getLogger(__name__)


def run_pipeline(
    settings: Settings,
    business_date: date,
    *,
    flow: str,
    load: bool = True,
    full_refresh: bool = False,
) -> RunSummary:
    """Run the batch pipeline once; the audit row and artifacts are written even on failure."""
    started = time.monotonic()
    run_id = current_run_id()
    record = run_audit.RunRecord(run_id=run_id, business_date=business_date, flow=flow)
    summary = RunSummary(run_id=run_id, business_date=business_date, flow=flow)
    record_run_task(settings, record)
    try:
        _steps(settings, record, summary, load=load, full_refresh=full_refresh)
    except BaseException as err:
        summary.seconds = time.monotonic() - started
        _close(settings, record, summary, error=err)
        raise
    summary.seconds = time.monotonic() - started
    _close(settings, record, summary, error=None)
    # dbt's target of this run is only kept when the run failed (to read what happened).
    remove_lane(settings, run_id)
    return summary


def _steps(
    settings: Settings,
    record: run_audit.RunRecord,
    summary: RunSummary,
    *,
    load: bool,
    full_refresh: bool,
) -> None:
    run_id = record.run_id
    if load:
        for source in BATCH_SOURCES:
            with record.step(f"load-{source}"):
                loaded = load_task(settings, source, record.business_date, run_id)
            summary.loads.append(loaded)
            record.count(source, loaded.received, loaded.loaded, loaded.quarantined_total)
    # The raw contracts check tonight's load of each source (its latest one if none came).
    load_ids = {f"{ld.source}_load_id": ld.load_id for ld in summary.loads if ld.load_id}
    _gate(settings, record, summary, "raw", variables=load_ids)
    with ExitStack() as warehouse:
        with record.step("wait-warehouse"):
            warehouse.enter_context(warehouse_guard(settings))
        with record.step("build-vitals-staging"):
            build_vitals_staging_task(settings, run_id, full_refresh=full_refresh)
        with record.step("build-silver"):
            silver = build_silver_task(settings, run_id, full_refresh=full_refresh)
        _gate(settings, record, summary, "silver")
        with record.step("build-gold-next"):
            built = build_gold_next_task(settings, silver, run_id, full_refresh=full_refresh)
        summary.dbt_nodes = len(silver.nodes) + len(built.nodes)
        _gate(settings, record, summary, "gold", schema="gold_next")
        with ExitStack() as gold:
            with record.step("wait-gold"):
                gold.enter_context(gold_guard(settings))
            with record.step("publish"):
                published = publish_task(settings, run_id)
        summary.published_tables = len(published.tables)
    with record.step("freshness"):
        summary.freshness = freshness_task(settings)
    record.gold_freshness = as_json(summary.freshness)
    with record.step("count-rows"):
        summary.table_rows = count_rows_task(settings)
    summary.layers = rows_by_layer(summary.table_rows)


def _gate(
    settings: Settings,
    record: run_audit.RunRecord,
    summary: RunSummary,
    layer: str,
    **kwargs: Any,
) -> None:
    """Run one gate; its outcome goes on the record, passed or failed (never retried)."""
    try:
        with record.step(f"gate-{layer}"):
            result = gate_task(settings, layer, record.run_id, **kwargs)
    except GateFailed as failed:
        record.gate_outcomes[layer] = "failed"
        summary.gates.append(failed.result)
        raise
    except BaseException:
        record.gate_outcomes[layer] = "error"
        raise
    record.gate_outcomes[layer] = "passed"
    summary.gates.append(result)


def _close(
    settings: Settings,
    record: run_audit.RunRecord,
    summary: RunSummary,
    *,
    error: BaseException | None,
) -> None:
    """Write the final record, refresh gold's run log, publish the artifacts.

    After a failure, a failure here too is noted on the run's own error (which is the one
    raised): neither is lost.
    """
    record.finish(succeeded=error is None)
    summary.status = record.status
    summary.failed_step = record.failed_step
    actions = (
        lambda: record_run_task(settings, record),
        lambda: refresh_run_audit_task(settings, record.run_id),
        lambda: publish_run_artifacts(settings, summary, record, error),
    )
    for action in actions:
        try:
            action()
        except Exception as close_error:
            if error is None:
                raise
            error.add_note(f"recording the failed run failed too: {close_error!r}")
            log.exception("recording failed run %s failed", record.run_id)
