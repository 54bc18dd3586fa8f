"""Prefect tasks: thin wrappers over plain carehouse functions.

Retries go on idempotent I/O only (loads). dbt builds and quality gates are
never retried: a failing check must fail loudly, once.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from carehouse.gates import GateResult, require_passed, verify_layer
from carehouse.ingest.batch import load_batch_source
from carehouse.ingest.summary import LoadSummary
from carehouse.inventory import table_counts
from carehouse.settings import Settings
from carehouse.transform import DbtResult, run_dbt

# Settings carry secrets and are not hashable inputs: no task result caching.
# Loads are idempotent I/O (a loaded file is skipped), so they may be retried.
IO_RETRIES = 3
IO_BACKOFF = exponential_backoff(backoff_factor=2)
IO_JITTER = 0.5


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


@task(name="dbt-build", cache_policy=NO_CACHE)
def dbt_build_task(settings: Settings, select: list[str]) -> DbtResult:
    """Run `dbt build` on a selection; raises naming the failed nodes."""
    return run_dbt(settings, ["build", "--select", *select])


@task(name="gate", cache_policy=NO_CACHE)
def gate_task(settings: Settings, layer: str, run_id: str) -> GateResult:
    """Verify every contract of one layer; raises GateFailed when any check fails."""
    result = verify_layer(settings, layer, run_id)
    require_passed(result)
    return result


@task(name="count-rows", cache_policy=NO_CACHE)
def count_rows_task(settings: Settings) -> dict[str, int]:
    """Row counts of every table per layer."""
    return table_counts(settings)
