"""Prefect tasks: thin wrappers over plain carehouse functions.

Retries (exponential backoff with jitter) go on idempotent I/O only: loads, the broker
drain, the publish, the run record. dbt builds, quality gates and the freshness check are
never retried: a failing check must fail loudly, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from carehouse.audit import runs as run_audit
from carehouse.core.database import connect, relation_exists
from carehouse.core.settings import Settings
from carehouse.ingest.batch import load_batch_source
from carehouse.ingest.due import due_folder
from carehouse.ingest.summary import LoadSummary
from carehouse.ingest.vitals.drain import drain_vitals
from carehouse.ingest.vitals.summary import DrainSummary
from carehouse.quality.freshness import TableFreshness, gold_freshness, require_fresh
from carehouse.quality.gates import GateResult, require_passed, verify_layer
from carehouse.warehouse.dbt import DbtResult, run_dbt
from carehouse.warehouse.dbt_session import DbtSession
from carehouse.warehouse.guards import gold_guard
from carehouse.warehouse.inventory import table_counts
from carehouse.warehouse.publish import (
    PublishResult,
    clone_gold_to_next,
    incremental_gold_models,
    publish_gold,
)

# Settings carry secrets and are not hashable inputs: no task result caching.
IO_RETRIES = 3
IO_BACKOFF = exponential_backoff(backoff_factor=2)
IO_JITTER = 0.5

GOLD_MODELS = "path:models/marts"
GOLD_NEXT_VARS = '{"gold_schema": "gold_next"}'
# The run log's gold model, refreshed in gold once a run's record is final, and the staging
# view it reads (built by the silver build; by the refresh only before any silver build).
RUN_AUDIT_MODEL = "pipeline_run_audit"
RUN_AUDIT_STAGING = ("staging", "stg_audit__pipeline_runs")
# The models the vitals stream refreshes after each micro-batch: the incremental staging
# table that de-duplicates raw vitals and gold.fct_vitals (news2_alerts is a view over it).
VITALS_STREAM_SELECTOR: tuple[str, ...] = ("tag:vitals_stream",)
# The stream's chain below gold: its staging table (which the stream writes too) and the
# views its fct_vitals reads (staged and quarantined sets, NEWS2 scoring). dbt replaces a view
# by renaming the old one and dropping it with cascade, which drops the views over it until
# the build re-creates them; a stream refresh in that gap fails. So the nightly builds the
# chain's models in a step of its own, under the gold lock every stream refresh holds, and
# its silver build leaves them out but runs their tests (outside the lock: the stream goes on
# meanwhile). A test whose model is left out is still selected only with indirect selection
# `empty` (dbt's default leaves out the tests of whatever a selection excludes); the chain's
# tests are the only ones that change with it.
VITALS_CHAIN = ("--select", "tag:vitals_stream+", "--exclude", GOLD_MODELS)
SILVER_WITH_CHAIN_TESTS = (
    "--exclude",
    GOLD_MODELS,
    "tag:vitals_stream+,resource_type:model",
    "--indirect-selection",
    "empty",
)
# dbt unit tests check the models' SQL against fixed inputs, not the data: they pass or fail
# with the code, so CI runs them (tests/dbt) and a batch run would only repeat them, seconds
# of dbt's CPU per build (dbt's own advice: keep them out of production builds).
NO_UNIT_TESTS = ("--exclude-resource-type", "unit_test")


@task(
    name="load",
    task_run_name="load-{source}",
    cache_policy=NO_CACHE,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_BACKOFF,
    retry_jitter_factor=IO_JITTER,
)
def load_task(settings: Settings, source: str, business_date: date, run_id: str) -> LoadSummary:
    """Load one batch source's files due by the business date (idempotent: loaded files skip)."""
    with due_folder(settings, source, business_date, run_id) as folder:
        return load_batch_source(settings, source, folder)


@task(
    name="drain-vitals",
    cache_policy=NO_CACHE,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_BACKOFF,
    retry_jitter_factor=IO_JITTER,
)
def drain_task(settings: Settings, duration: float | None = None) -> DrainSummary:
    """Drain the vitals topic until caught up (exactly once: a retry resumes from offsets)."""
    return drain_vitals(settings, until_caught_up=True, duration=duration)


@task(name="build-silver", cache_policy=NO_CACHE)
def build_silver_task(settings: Settings, lane: str, *, full_refresh: bool = False) -> DbtResult:
    """Dbt build of seeds, staging, quarantine, snapshots and silver: everything but gold.

    The vitals chain's models were built by the step before; their tests run here.
    """
    refresh = ["--full-refresh"] if full_refresh else []
    return run_dbt(
        settings, ["build", *SILVER_WITH_CHAIN_TESTS, *NO_UNIT_TESTS, *refresh], lane=lane
    )


@task(name="build-vitals-staging", cache_policy=NO_CACHE)
def build_vitals_staging_task(
    settings: Settings, lane: str, *, full_refresh: bool = False
) -> DbtResult:
    """Build the vitals stream's chain below gold (see VITALS_CHAIN), under the gold lock.

    The stream waits for these models (seconds); their tests run in the silver build, after
    the lock, while the stream goes on.
    """
    refresh = ["--full-refresh"] if full_refresh else []
    with gold_guard(settings):
        return run_dbt(settings, ["run", *VITALS_CHAIN, *refresh], lane=lane)


@task(name="build-gold-next", cache_policy=NO_CACHE)
def build_gold_next_task(
    settings: Settings, silver: DbtResult, lane: str, *, full_refresh: bool = False
) -> DbtResult:
    """Build the marts into gold_next, the incremental ones from the published state.

    The incremental models come from the manifest the silver build just wrote (it
    holds the whole project): a separate `dbt parse` would pay dbt's ~5 s start-up again.
    A full refresh starts gold_next empty and rebuilds every model from silver.
    """
    incremental = incremental_gold_models(settings, silver.target_path / "manifest.json")
    clone_gold_to_next(settings, [] if full_refresh else incremental)
    refresh = ["--full-refresh"] if full_refresh else []
    return run_dbt(
        settings,
        ["build", "--select", GOLD_MODELS, "--vars", GOLD_NEXT_VARS, *NO_UNIT_TESTS, *refresh],
        lane=lane,
    )


@task(name="gate", task_run_name="gate-{layer}", cache_policy=NO_CACHE)
def gate_task(
    settings: Settings,
    layer: str,
    run_id: str,
    schema: str | None = None,
    variables: Mapping[str, str | int] | None = None,
) -> GateResult:
    """Verify every contract of one layer; raises GateFailed when any check fails."""
    return require_passed(verify_layer(settings, layer, run_id, schema=schema, variables=variables))


@task(
    name="publish-gold",
    cache_policy=NO_CACHE,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_BACKOFF,
    retry_jitter_factor=IO_JITTER,
)
def publish_task(settings: Settings, run_id: str) -> PublishResult:
    """Move the verified gold_next into gold in one transaction (a failed try changes nothing)."""
    return publish_gold(settings, run_id)


@task(name="freshness", cache_policy=NO_CACHE)
def freshness_task(settings: Settings) -> list[TableFreshness]:
    """Every gold table within its SLA; raises StaleGold naming each stale one and its age."""
    return require_fresh(gold_freshness(settings))


@task(name="count-rows", cache_policy=NO_CACHE)
def count_rows_task(settings: Settings) -> dict[str, int]:
    """Row counts of every table per layer."""
    return table_counts(settings)


@task(
    name="record-run",
    cache_policy=NO_CACHE,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_BACKOFF,
    retry_jitter_factor=IO_JITTER,
)
def record_run_task(settings: Settings, record: run_audit.RunRecord) -> None:
    """Write the run's row in audit.pipeline_runs (an upsert: safe to retry)."""
    run_audit.write(settings, record)


@task(name="refresh-run-audit", cache_policy=NO_CACHE)
def refresh_run_audit_task(settings: Settings, lane: str) -> DbtResult:
    """Bring gold.pipeline_run_audit up to the run's final record (writes gold directly).

    Only the gold model: its staging view belongs to the silver build, which another run
    may be doing now (two dbt processes replacing one view collide). Before the first silver
    build ever (a run that failed early on a new warehouse) the view is built here too.
    """
    with connect(settings, "transformer", autocommit=True) as conn:
        staged = relation_exists(conn, *RUN_AUDIT_STAGING)
    models = [RUN_AUDIT_MODEL] if staged else [RUN_AUDIT_STAGING[1], RUN_AUDIT_MODEL]
    with gold_guard(settings):
        return run_dbt(settings, ["run", "--select", *models], lane=lane)


@task(name="refresh-vitals-gold", cache_policy=NO_CACHE)
def refresh_vitals_task(settings: Settings, lane: str, session: DbtSession | None) -> DbtResult:
    """Refresh the vitals chain in gold incrementally (its contracts reject bad rows)."""
    args = ["run", "--select", *VITALS_STREAM_SELECTOR]
    with gold_guard(settings):
        return session.run(args) if session is not None else run_dbt(settings, args, lane=lane)
