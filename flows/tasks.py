"""Prefect tasks: thin wrappers over plain carehouse functions.

Retries go on idempotent I/O only (loads, publish). dbt builds and quality
gates are never retried: a failing check must fail loudly, once.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from carehouse.gates import GateResult, require_passed, verify_layer
from carehouse.ingest.batch import load_batch_source
from carehouse.ingest.summary import LoadSummary
from carehouse.inventory import table_counts
from carehouse.publish import (
    PublishResult,
    clone_gold_to_next,
    incremental_gold_models,
    publish_gold,
)
from carehouse.settings import Settings
from carehouse.transform import DbtResult, run_dbt

# Settings carry secrets and are not hashable inputs: no task result caching.
IO_RETRIES = 3
IO_BACKOFF = exponential_backoff(backoff_factor=2)
IO_JITTER = 0.5

GOLD_MODELS = "path:models/marts"


@task(
    name="load",
    task_run_name="load-{source}",
    cache_policy=NO_CACHE,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_BACKOFF,
    retry_jitter_factor=IO_JITTER,
)
def load_task(settings: Settings, source: str) -> LoadSummary:
    """Load one batch source's new files into raw (idempotent: a loaded file is skipped)."""
    return load_batch_source(settings, source)


@task(name="build-silver", cache_policy=NO_CACHE)
def build_silver_task(settings: Settings) -> DbtResult:
    """Dbt build of seeds, staging, quarantine, snapshots and silver: everything but gold."""
    return run_dbt(settings, ["build", "--exclude", GOLD_MODELS])


@task(name="build-gold-next", cache_policy=NO_CACHE)
def build_gold_next_task(settings: Settings) -> DbtResult:
    """Build the marts into gold_next, the incremental ones from the published state.

    The incremental models come from the manifest the silver build just wrote (it
    holds the whole project): a separate `dbt parse` would pay dbt's ~5 s start-up again.
    """
    clone_gold_to_next(settings, incremental_gold_models(settings))
    return run_dbt(
        settings, ["build", "--select", GOLD_MODELS, "--vars", '{"gold_schema": "gold_next"}']
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


@task(name="count-rows", cache_policy=NO_CACHE)
def count_rows_task(settings: Settings) -> dict[str, int]:
    """Row counts of every table per layer."""
    return table_counts(settings)
