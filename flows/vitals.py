"""The vitals stream: drain the topic continuously, refresh gold's vitals chain as rows land.

One drain runs in a background thread for the whole flow run (one consumer, started once);
the flow's own loop watches the drain's committed offsets in the database and, as soon as
they move, refreshes the stream's models (``VITALS_STREAM_SELECTOR``: the de-duplicating
staging table and ``gold.fct_vitals``, under the view ``gold.news2_alerts``) incrementally,
straight in gold, with dbt running in this process against a manifest parsed once at the
start (``Settings.vitals_dbt_in_process``; off: a dbt subprocess per refresh, seconds
slower). There is no gate before that write: ``fct_vitals``' enforced contract constraints
reject bad rows (the refresh fails, naming the model), and the next nightly's gold gate
still verifies all of gold, stream tables included. Each refresh holds the gold lock, which a
nightly holds only for its publish: the stream keeps gold current while a nightly builds, and
refreshes again as soon as a publish replaced gold's table (carehouse.warehouse.guards says why).

A refresh waits for gold to exist: until the first nightly has built it, the stream only
drains (the nightly then builds the chain from raw).

Runs until stopped (cancel the flow run: a batch not yet committed rolls back and is drained
again by the next run; Ctrl-C in the foreground commits the batch in hand first; SIGTERM,
e.g. from a process manager, stops the drain, commits its batch and refreshes gold one last
time), for
``duration`` seconds, or, with ``until_caught_up``, until every partition reached the end of
its log once (what `carehouse run` uses).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field

import psycopg
from prefect import flow

from carehouse.core.database import connect, relation_oid
from carehouse.core.settings import Settings, get_settings
from carehouse.ingest.vitals.drain import drain_vitals
from carehouse.ingest.vitals.signals import stop_on_signals
from carehouse.ingest.vitals.summary import DrainSummary
from carehouse.ingest.vitals.tables import ensure_tables, read_positions
from carehouse.ingest.vitals.topic import ensure_topic
from carehouse.warehouse.dbt import remove_lane
from carehouse.warehouse.dbt_session import DbtSession
from flows.summary import current_run_id
from flows.tasks import IO_RETRIES, refresh_vitals_task
from flows.vitals_process import READY_LINE

log = logging.getLogger(__name__)

# How often the loop looks for newly committed offsets: a new observation reaches gold in
# about this plus one dbt run.
WATCH_SECONDS = 0.2
# Back-off between restarts of a drain that failed (broker or database unreachable).
RESTART_BACKOFF_SECONDS = (2.0, 4.0, 8.0)


@dataclass
class VitalsSummary:
    """What one vitals flow run did."""

    drains: list[DrainSummary] = field(default_factory=list)
    refreshes: int = 0
    refresh_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def loaded(self) -> int:
        """Messages loaded into raw over every drain."""
        return sum(drain.loaded for drain in self.drains)

    def one_line(self) -> str:
        """`vitals: 1,200 messages loaded, 3 gold refreshes (mean 3.1 s) in 20.0s`."""
        mean = sum(self.refresh_seconds) / len(self.refresh_seconds) if self.refresh_seconds else 0
        quarantined = sum(drain.quarantined_total for drain in self.drains)
        return (
            f"vitals: {self.loaded:,} messages loaded, {quarantined:,} quarantined,"
            f" {self.refreshes} gold refreshes (mean {mean:.1f}s) in {self.seconds:.1f}s"
        )


class _DrainThread(threading.Thread):
    """The drain, restarted with back-off when it fails (it resumes from committed offsets)."""

    def __init__(
        self, settings: Settings, *, until_caught_up: bool, deadline: float | None
    ) -> None:
        super().__init__(name="vitals-drain", daemon=True)
        self.settings = settings
        self.until_caught_up = until_caught_up
        self.deadline = deadline
        self.stop = threading.Event()
        self.summaries: list[DrainSummary] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            remaining = None if self.deadline is None else self.deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            try:
                self.summaries.append(
                    drain_vitals(
                        self.settings,
                        until_caught_up=self.until_caught_up,
                        duration=remaining,
                        stop=self.stop,
                    )
                )
                return
            except Exception as err:  # noqa: BLE001 - logged, retried, raised when out of tries
                if failures >= IO_RETRIES:
                    self.error = err
                    return
                delay = RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)]
                failures += 1
                log.warning("vitals drain failed (%r); restart %d in %.0fs", err, failures, delay)
                self.stop.wait(delay)


def _committed_offsets(conn: psycopg.Connection, topic: str, partitions: int) -> int:
    """Sum of the next offsets the database has committed for the topic's partitions."""
    return sum(read_positions(conn, topic, range(partitions)).values())


def _gold_table(conn: psycopg.Connection) -> int | None:
    """The oid of gold.fct_vitals (None until a nightly built it); a publish changes it."""
    return relation_oid(conn, "gold", "fct_vitals")


@dataclass
class _Refresher:
    """Refreshes the stream's models in gold when offsets moved or a publish replaced gold."""

    settings: Settings
    lane: str
    summary: VitalsSummary
    refreshed_at: int  # the committed offsets the last refresh saw
    refreshed_table: int | None  # gold.fct_vitals' oid then
    session: DbtSession | None = None

    def refresh_if_due(self, committed: int, table: int | None) -> None:
        """Refresh when new messages were committed or gold's table was replaced since."""
        # New messages, or a nightly published gold: its copy lacks what the stream wrote after
        # the nightly copied gold (carehouse.warehouse.guards), so refresh at once.
        if table is None or (committed == self.refreshed_at and table == self.refreshed_table):
            return
        started = time.monotonic()
        if self.session is None and self.settings.vitals_dbt_in_process:
            self.session = DbtSession(self.settings, self.lane)
        refresh_vitals_task(self.settings, self.lane, self.session)
        self.summary.refreshes += 1
        self.summary.refresh_seconds.append(time.monotonic() - started)
        self.refreshed_at = committed
        # The table refreshed: a publish during the refresh is seen next time.
        self.refreshed_table = table


@flow(name="vitals", log_prints=False)
def vitals(duration: float | None = None, until_caught_up: bool = False) -> VitalsSummary:
    """Drain vitals in micro-batches and keep gold's vitals chain current (see module doc)."""
    settings = get_settings()
    lane = f"vitals-{current_run_id()}"
    started = time.monotonic()
    summary = VitalsSummary()
    partitions = ensure_topic(settings)
    # One connection watches, for the whole run (it polls several times a second).
    with connect(settings, "loader", autocommit=True) as watch:
        ensure_tables(watch)
        refreshed_at = _committed_offsets(watch, settings.vitals_topic, partitions)
        refreshed_table = _gold_table(watch)
        refresher = _Refresher(settings, lane, summary, refreshed_at, refreshed_table)
        if settings.vitals_dbt_in_process and refreshed_table is not None:
            # Parsed once, before the first refresh needs it (see carehouse.warehouse.dbt_session).
            refresher.session = DbtSession(settings, lane)
        drain = _DrainThread(
            settings,
            until_caught_up=until_caught_up,
            deadline=None if duration is None else started + duration,
        )
        drain.start()
        # SIGTERM (a process manager, a deployment's cancellation) stops the drain, which
        # commits its batch, and gold gets a last refresh; Ctrl-C stays Prefect's.
        with stop_on_signals(drain.stop, (signal.SIGTERM,)):
            log.info(READY_LINE, settings.vitals_topic)
            try:
                while True:
                    finished = not drain.is_alive()
                    refresher.refresh_if_due(
                        _committed_offsets(watch, settings.vitals_topic, partitions),
                        _gold_table(watch),
                    )
                    if finished:
                        break
                    drain.join(WATCH_SECONDS)
            finally:
                # A failed refresh (or a cancelled run) stops the drain, which commits its batch.
                drain.stop.set()
                drain.join()
    if drain.error is not None:
        raise drain.error
    summary.drains = drain.summaries
    summary.seconds = time.monotonic() - started
    log.info("%s", summary.one_line())
    remove_lane(settings, lane)
    return summary
