"""Mutual exclusion between flows: a Prefect global concurrency limit plus a Postgres lock.

Two nightly runs, or a nightly and a backfill or full refresh, must never run the snapshot
or publish steps at the same time: concurrent dbt snapshots are a known cause of duplicate
current rows, and two builds into ``gold_next`` would publish a mix. Two guards, each for a
reason of its own:

- the Prefect global concurrency limit :data:`WAREHOUSE_LIMIT` (one slot) makes a second run
  wait in Prefect, visibly (the UI shows it holding no slot), and is where an operator raises
  or lowers concurrency;
- the Postgres advisory lock :data:`WAREHOUSE_LOCK` is the guarantee: it also holds against
  code that runs without Prefect's API (the CLI, a script) or a limit someone deleted, and it
  dies with the session that held it, so a killed run never leaves it stuck.

The vitals stream writes two gold tables directly between nightly runs. It takes
:data:`GOLD_LOCK` around each refresh; a nightly holds the same lock only for its publish,
so a stream refresh is never half-written when gold is replaced and the stream keeps gold's
alerts current while the nightly builds and verifies ``gold_next`` (minutes at scale).
What the stream wrote to gold after the nightly copied gold into ``gold_next`` is not in
the published copy: the stream refreshes again as soon as it sees that gold's table was
replaced (flows.vitals), and its watermark, taken from the published table, reaches back to
those sets. The nightly also holds the lock while it rebuilds the stream's chain below gold
(the staging table both write, and the views a refresh reads, which dbt drops and re-creates:
flows.tasks.VITALS_CHAIN), seconds at the start of its silver step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from carehouse.core.database import connect
from carehouse.core.settings import Settings

log = logging.getLogger(__name__)

WAREHOUSE_LIMIT = "carehouse-warehouse"
WAREHOUSE_LOCK = "carehouse.warehouse"
GOLD_LOCK = "carehouse.gold"

# A Prefect slot lease is renewed while held; a build longer than this is still covered.
_LEASE_SECONDS = 300.0


@contextmanager
def advisory_lock(settings: Settings, name: str) -> Iterator[None]:
    """Hold a session-level Postgres advisory lock named ``name`` (waits for it)."""
    with connect(settings, "transformer", autocommit=True) as conn:
        log.info("waiting for lock %s", name)
        conn.execute("select pg_advisory_lock(hashtext(%s))", (name,))
        try:
            yield
        finally:
            # Closing the session would release it too; unlocking says so at once.
            if not conn.closed:
                conn.execute("select pg_advisory_unlock(hashtext(%s))", (name,))


def ensure_concurrency_limit(name: str = WAREHOUSE_LIMIT, limit: int = 1) -> None:
    """Create the Prefect global concurrency limit when missing (`carehouse up`, every flow)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit)
                )
            except PrefectHTTPStatusError:
                # Two flows creating it at once: the other one won; it must exist now.
                client.read_global_concurrency_limit_by_name(name)


@contextmanager
def warehouse_guard(settings: Settings) -> Iterator[None]:
    """One warehouse build (snapshots to publish) at a time: Prefect slot, then the lock."""
    from prefect.concurrency.sync import concurrency

    ensure_concurrency_limit()
    with ExitStack() as stack:
        # strict: a missing limit is an error, not a silent pass.
        stack.enter_context(
            concurrency(WAREHOUSE_LIMIT, occupy=1, strict=True, lease_duration=_LEASE_SECONDS)
        )
        stack.enter_context(advisory_lock(settings, WAREHOUSE_LOCK))
        yield


@contextmanager
def gold_guard(settings: Settings) -> Iterator[None]:
    """Exclusive right to write gold directly (stream refresh, run log) or to publish."""
    with advisory_lock(settings, GOLD_LOCK):
        yield
