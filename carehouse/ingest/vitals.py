"""Vital signs from the Kafka topic into `raw_vitals.vitals`, exactly once, as the loader.

Exactly once: each micro-batch (one `consume()` call) is one Postgres
transaction holding its raw rows, its dead letters and the partitions' next
offsets in `raw_vitals._carehouse_offsets`. On start, and on every partition
assignment, the drain seeks to the offsets the database holds; Kafka's
committed offsets are only advisory (written after each commit, for lag
monitoring). A crash at any instant either committed a batch with its offsets
or did neither, so a restarted drain neither loses nor repeats a message.

Zombies are fenced: a batch's offset update only applies where the database
still holds the offset the batch started from, and the whole batch rolls back
when another worker got there first (during a rebalance, two processes can
briefly both believe they own a partition).

Speed: the main thread consumes and renders COPY text (see
`dlt_sources.vitals.helpers`) while a writer thread runs the previous batch's
transaction, so Python and Postgres work at the same time.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import queue
import secrets
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Literal

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # the admin package does not re-export it by name
from psycopg import sql

from carehouse.database import connect
from carehouse.settings import Settings
from dlt_sources.vitals.helpers import (
    DEAD_LETTER_COPY_COLUMNS,
    RAW_COPY_COLUMNS,
    RenderedBatch,
    Renderer,
    copy_unescape,
)
from dlt_sources.vitals.settings import (
    BATCH_MESSAGES,
    DATASET,
    DEAD_LETTER_TABLE,
    DRAIN_GROUP,
    OFFSETS_TABLE,
    PARTITIONS,
    POLL_SECONDS,
    QUARANTINE_SCHEMA,
    REJECTED_BY_DATABASE,
    REPLICATION_FACTOR,
    SOURCE,
    TABLE,
)

__all__ = ["DrainError", "DrainSummary", "drain_vitals", "ensure_tables", "ensure_topic"]

log = logging.getLogger(__name__)

# A killed predecessor's session holds the drain lock until Postgres notices it is gone.
LOCK_WAIT_SECONDS = 15.0
TOPIC_TIMEOUT_SECONDS = 15.0

_RAW_DDL = """
create table if not exists {raw} (
    kafka_topic text not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    kafka_timestamp timestamptz,
    message_key bytea,
    payload jsonb not null,
    device_id text not null,
    patient_id text not null,
    observed_at timestamptz not null,
    heart_rate numeric not null,
    resp_rate numeric not null,
    systolic_bp numeric not null,
    diastolic_bp numeric not null,
    spo2 numeric not null,
    spo2_scale smallint not null,
    on_oxygen boolean not null,
    consciousness text not null,
    temperature_c numeric not null,
    _ingested_at timestamptz not null default now(),
    _drain_batch_id text not null,
    primary key (kafka_topic, kafka_partition, kafka_offset)
)
"""

_DEAD_LETTER_DDL = """
create table if not exists {dead} (
    kafka_topic text not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    kafka_timestamp timestamptz,
    message_key bytea,
    message_value bytea,
    reason text not null,
    _ingested_at timestamptz not null default now(),
    _drain_batch_id text not null,
    primary key (kafka_topic, kafka_partition, kafka_offset)
)
"""

_OFFSETS_DDL = """
create table if not exists {offsets} (
    consumer_group text not null,
    topic text not null,
    partition integer not null,
    next_offset bigint not null,
    updated_at timestamptz not null default now(),
    primary key (consumer_group, topic, partition)
)
"""

_COMMENTS = {
    "raw": (
        "Vital-sign messages from Kafka as received: coordinates (the key), the whole"
        " message as payload, its fields typed. Duplicates and implausible values are"
        " kept; staging de-duplicates and quarantines them."
    ),
    "dead": (
        "Kafka messages the vitals drain could not load (bytes, JSON, fields, types),"
        " with their raw key and value and the reason; committed with the batch."
    ),
    "offsets": (
        "Where the vitals drain resumes per partition; written in the same transaction"
        " as the rows, so it is the truth (Kafka's committed offsets are advisory)."
    ),
}


def _raw() -> sql.Composable:
    return sql.Identifier(DATASET, TABLE)


def _dead() -> sql.Composable:
    return sql.Identifier(QUARANTINE_SCHEMA, DEAD_LETTER_TABLE)


def _offsets() -> sql.Composable:
    return sql.Identifier(DATASET, OFFSETS_TABLE)


class DrainError(RuntimeError):
    """The drain cannot go on without losing or repeating messages; it stopped instead."""


class Fenced(Exception):
    """Another worker moved a partition on since this batch started: it was rolled back."""


class SlowBatch(DrainError):
    """A batch's transaction stayed open too long to commit: it was rolled back.

    Its rows would carry an ``_ingested_at`` (the transaction's start) older than the vitals
    stream's lookback covers by the time they became visible, so a stream refresh could
    miss them. The drain fails loudly instead; the batch is drained again on restart.
    """


# ---- topic and tables -------------------------------------------------------------------


def ensure_topic(settings: Settings, partitions: int = PARTITIONS) -> int:
    """Create the vitals topic when missing; returns its number of partitions.

    Only the full topic list is requested: a metadata request naming a missing
    topic makes some brokers (Tansu among them) create it with their default
    partition count.
    """
    topic = settings.vitals_topic
    admin = AdminClient({"bootstrap.servers": settings.kafka})
    try:
        existing = admin.list_topics(timeout=TOPIC_TIMEOUT_SECONDS).topics
    except KafkaException as err:
        where = "embedded Tansu" if settings.embedded_kafka else "CAREHOUSE_KAFKA_BOOTSTRAP"
        raise DrainError(
            f"cannot reach Kafka ({where}) at {settings.kafka}: {err.args[0].name()}"
        ) from err
    if topic not in existing:
        future = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=REPLICATION_FACTOR)]
        )[topic]
        try:
            future.result(timeout=TOPIC_TIMEOUT_SECONDS)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise  # another process creating it at the same time is fine; the rest is not
    deadline = time.monotonic() + TOPIC_TIMEOUT_SECONDS
    while True:
        metadata = admin.list_topics(timeout=TOPIC_TIMEOUT_SECONDS).topics.get(topic)
        if metadata is not None and metadata.error is None and metadata.partitions:
            return len(metadata.partitions)
        if time.monotonic() > deadline:
            raise DrainError(f"topic {topic} was created but its partitions never appeared")
        time.sleep(0.1)


def ensure_tables(conn: psycopg.Connection) -> None:
    """Create the raw, dead-letter and offsets tables when missing."""
    with conn.transaction():
        # Workers starting together would race on CREATE TABLE IF NOT EXISTS.
        conn.execute("select pg_advisory_xact_lock(%s)", (_lock_key("ddl"),))
        for ddl, table, comment in (
            (_RAW_DDL, _raw(), _COMMENTS["raw"]),
            (_DEAD_LETTER_DDL, _dead(), _COMMENTS["dead"]),
            (_OFFSETS_DDL, _offsets(), _COMMENTS["offsets"]),
        ):
            conn.execute(sql.SQL(ddl).format(raw=table, dead=table, offsets=table))
            conn.execute(sql.SQL("comment on table {} is {}").format(table, sql.Literal(comment)))
        # The vitals stream reads the last seconds of raw by ingestion time after every
        # micro-batch. BRIN: rows arrive in _ingested_at order, so a few block ranges answer
        # that, and it is kept per block range, where a btree adds an entry for every row
        # the drain copies.
        conn.execute(
            sql.SQL("create index if not exists {} on {} using brin (_ingested_at)").format(
                sql.Identifier("vitals_ingested_at_brin"), _raw()
            )
        )


def _lock_key(name: str) -> int:
    digest = hashlib.sha256(f"carehouse.ingest.vitals.{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _drain_lock(conn: psycopg.Connection, topic: str, *, shared: bool) -> Iterator[None]:
    """One single drain per topic, or any number of scale-out workers, never both."""
    key = _lock_key(f"drain.{topic}")
    take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    release = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        row = conn.execute(sql.SQL("select {}(%s)").format(sql.Identifier(take)), (key,)).fetchone()
        if row and row[0]:
            break
        if time.monotonic() > deadline:
            # Imported here: the ledger module loads pyarrow, which a drain never needs.
            from carehouse.ingest.ledger import LoadInProgress

            raise LoadInProgress(
                f"another vitals drain of topic {topic} holds the drain lock"
                f" ({'a single drain' if shared else 'a drain'} is running); try again when it ends"
            )
        time.sleep(0.2)
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute(sql.SQL("select {}(%s)").format(sql.Identifier(release)), (key,))


def read_positions(
    conn: psycopg.Connection, topic: str, partitions: Sequence[int], group: str = DRAIN_GROUP
) -> dict[int, int]:
    """The database's next offset of each partition (0 for a partition never drained)."""
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "insert into {} (consumer_group, topic, partition, next_offset)"
                " select %s, %s, partition, 0 from unnest(%s::integer[]) as partition"
                " on conflict do nothing"
            ).format(_offsets()),
            (group, topic, list(partitions)),
        )
        rows = conn.execute(
            sql.SQL(
                "select partition, next_offset from {}"
                " where consumer_group = %s and topic = %s and partition = any(%s)"
            ).format(_offsets()),
            (group, topic, list(partitions)),
        ).fetchall()
    return {partition: next_offset for partition, next_offset in rows}


# ---- one batch, one transaction ---------------------------------------------------------


def write_batch(
    conn: psycopg.Connection,
    batch: RenderedBatch,
    topic: str,
    group: str = DRAIN_GROUP,
    *,
    max_open_seconds: float | None = None,
) -> int:
    """Commit a batch's rows, dead letters and offsets in one transaction.

    Returns the rows Postgres rejected that were dead-lettered instead (normally 0).
    Raises Fenced, having rolled everything back, when a partition's offset in the
    database is no longer the one the batch started from, and SlowBatch, rolled back too,
    when the transaction has been open longer than ``max_open_seconds`` (by the server's
    clock, the one ``_ingested_at`` comes from) just before its commit.
    """
    partitions = sorted(batch.end_offsets)
    try:
        with conn.transaction():
            cursor = conn.execute(
                sql.SQL(
                    "update {offsets} as o set next_offset = n.end_offset, updated_at = now()"
                    " from unnest(%s::integer[], %s::bigint[], %s::bigint[])"
                    " as n(partition, start_offset, end_offset)"
                    " where o.consumer_group = %s and o.topic = %s"
                    " and o.partition = n.partition and o.next_offset = n.start_offset"
                ).format(offsets=_offsets()),
                (
                    partitions,
                    [batch.start_offsets[p] for p in partitions],
                    [batch.end_offsets[p] for p in partitions],
                    group,
                    topic,
                ),
            )
            if cursor.rowcount != len(partitions):
                raise Fenced(f"{len(partitions) - cursor.rowcount} partitions moved on")
            dead = batch.dead_data
            rejected = _copy_salvaging(conn, batch.raw_data)
            if rejected:
                dead += b"".join(rejected)
                batch.reject([row.split(b"\t")[5].decode() for row in rejected])
            if dead:
                _copy(conn, _dead(), DEAD_LETTER_COPY_COLUMNS, dead)
            if max_open_seconds is not None:
                _check_open_seconds(conn, max_open_seconds)
    except psycopg.errors.DeadlockDetected as err:
        # Two workers updating the same partitions in different orders: a fence too.
        raise Fenced("deadlock with another worker") from err
    return len(rejected)


def _check_open_seconds(conn: psycopg.Connection, limit: float) -> None:
    row = conn.execute("select extract(epoch from clock_timestamp() - now())::float8").fetchone()
    open_seconds = float(row[0]) if row else 0.0
    if open_seconds > limit:
        raise SlowBatch(
            f"a batch transaction was open {open_seconds:.1f}s, over {limit:.0f}s"
            " (half of vitals_lookback_seconds): rolled back, to be drained again"
        )


def _copy(
    conn: psycopg.Connection, table: sql.Composable, columns: Sequence[str], data: bytes
) -> None:
    statement = sql.SQL("copy {} ({}) from stdin").format(
        table, sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(memoryview(data))


def _copy_salvaging(conn: psycopg.Connection, data: bytes) -> list[bytes]:
    """COPY raw rows; rows Postgres rejects become dead-letter rows (returned).

    The checks before should leave nothing for Postgres to reject; if a row slips
    through anyway, halving the batch under savepoints finds it, so one bad row
    can never stall the drain.
    """
    if not data:
        return []
    try:
        with conn.transaction():
            _copy(conn, _raw(), RAW_COPY_COLUMNS, data)
    except psycopg.errors.DataError as err:
        rows = data.splitlines(keepends=True)
        if len(rows) == 1:
            return [_rejected_row(rows[0], err.sqlstate or "22000")]
        middle = len(rows) // 2
        return _copy_salvaging(conn, b"".join(rows[:middle])) + _copy_salvaging(
            conn, b"".join(rows[middle:])
        )
    return []


def _rejected_row(row: bytes, sqlstate: str) -> bytes:
    """A raw COPY row Postgres rejected, as a dead-letter row with the original bytes."""
    fields = row.rstrip(b"\n").split(b"\t")
    partition, offset, timestamp, key, payload = fields[:5]
    topic, batch_id = fields[-2:]
    value = copy_unescape(payload.decode()).encode()
    reason = f"{REJECTED_BY_DATABASE}:{sqlstate}".encode()
    return (
        b"\t".join(
            (
                partition,
                offset,
                timestamp,
                key,
                b"\\\\x" + value.hex().encode(),
                reason,
                topic,
                batch_id,
            )
        )
        + b"\n"
    )


# ---- the writer thread ------------------------------------------------------------------

Outcome = Literal["committed", "fenced"]


class _Writer:
    """Runs batch transactions on its own connection, one at a time, in submission order.

    After a fenced batch it drops what follows until `resume()`: those batches
    started from offsets that are no longer true.
    """

    def __init__(self, conn: psycopg.Connection, topic: str, max_open_seconds: float) -> None:
        self._conn = conn
        self._topic = topic
        self._max_open_seconds = max_open_seconds
        self._pending: queue.Queue[RenderedBatch | None] = queue.Queue(maxsize=1)
        self._outcomes: deque[tuple[RenderedBatch, Outcome]] = deque()
        self._error: BaseException | None = None
        self._fenced = False
        self._thread = threading.Thread(target=self._run, name="vitals-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: RenderedBatch) -> None:
        """Queue a batch; blocks while the previous one is still being written."""
        self._raise()
        self._pending.put(batch)

    def flush(self) -> None:
        """Wait until every submitted batch is committed, fenced or dropped."""
        self._pending.join()
        self._raise()

    def outcomes(self) -> list[tuple[RenderedBatch, Outcome]]:
        """Batches finished since the last call."""
        done = []
        while self._outcomes:
            done.append(self._outcomes.popleft())
        return done

    def resume(self) -> None:
        """Accept batches again after a fence (call after flush, with fresh positions)."""
        self._fenced = False

    def close(self, *, wait: bool = True) -> None:
        """Stop the thread once the queue is empty; `wait=False` after a failure elsewhere."""
        if wait:
            self._pending.put(None)
            self._thread.join()
            self._raise()
            return
        # The batch in flight, if any, is cut off when the caller closes the connection: it
        # rolls back. The thread is a daemon, so a full queue cannot keep the process alive.
        with contextlib.suppress(queue.Full):
            self._pending.put_nowait(None)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            batch = self._pending.get()
            try:
                if batch is None:
                    return
                if self._error is None and not self._fenced:
                    try:
                        write_batch(
                            self._conn,
                            batch,
                            self._topic,
                            max_open_seconds=self._max_open_seconds,
                        )
                    except Fenced:
                        self._fenced = True
                        self._outcomes.append((batch, "fenced"))
                    else:
                        self._outcomes.append((batch, "committed"))
            except BaseException as err:  # noqa: BLE001 - handed to the main thread, re-raised there
                self._error = err
            finally:
                self._pending.task_done()


# ---- the summary ------------------------------------------------------------------------


@dataclass
class DrainSummary:
    """What one drain did: messages received = loaded + quarantined + skipped."""

    source: str
    topic: str
    mode: Literal["single", "scale-out"]
    drain_id: str
    received: int = 0
    loaded: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # behind the database's offsets (already loaded), or no longer ours
    messages_with_new_fields: int = 0
    new_fields: dict[str, int] = field(default_factory=dict)  # field -> messages carrying it
    batches: int = 0
    fenced_batches: int = 0  # rolled back because another worker moved the partition on
    rejected_by_database: int = 0
    caught_up: bool = False
    positions: dict[int, int] = field(default_factory=dict)  # next offset per partition owned
    seconds: float = 0.0

    @property
    def quarantined_total(self) -> int:
        """Messages dead-lettered, whatever the reason."""
        return sum(self.quarantined.values())

    def one_line(self) -> str:
        """A one-line account for logs and the run summary (counts only, no content)."""
        rate = self.received / self.seconds if self.seconds else 0.0
        text = (
            f"{self.source}: {self.received:,} messages received from {self.topic},"
            f" {self.loaded:,} loaded, {self.quarantined_total:,} quarantined"
        )
        if self.quarantined:
            reasons = ", ".join(f"{reason} {count:,}" for reason, count in self.quarantined.items())
            text += f" ({reasons})"
        text += (
            f", {self.skipped:,} skipped; {self.batches:,} batches in {self.seconds:.1f}s"
            f" ({rate:,.0f} messages/s)"
        )
        if self.caught_up:
            text += "; caught up"
        if self.new_fields:
            names = ", ".join(f"{name} ({count:,})" for name, count in self.new_fields.items())
            text += f"; {self.messages_with_new_fields:,} messages with new fields: {names}"
        if self.fenced_batches:
            text += f"; {self.fenced_batches} batches fenced (another worker got there first)"
        return text

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: totals first (`received`, `loaded`, `quarantined`, `skipped`)."""
        return {
            "source": self.source,
            "received": self.received,
            "loaded": self.loaded,
            "quarantined": self.quarantined_total,
            "skipped": self.skipped,
            "quarantined_by_reason": self.quarantined,
            "messages_with_new_fields": self.messages_with_new_fields,
            "new_fields": self.new_fields,
            "topic": self.topic,
            "mode": self.mode,
            "drain_id": self.drain_id,
            "batches": self.batches,
            "fenced_batches": self.fenced_batches,
            "rejected_by_database": self.rejected_by_database,
            "caught_up": self.caught_up,
            "positions": {str(p): offset for p, offset in sorted(self.positions.items())},
            "seconds": round(self.seconds, 3),
        }


# ---- the drain --------------------------------------------------------------------------


def drain_vitals(
    settings: Settings,
    *,
    until_caught_up: bool = True,
    duration: float | None = None,
    scale_out: bool = False,
    stop: threading.Event | None = None,
    batch_messages: int = BATCH_MESSAGES,
) -> DrainSummary:
    """Drain the vitals topic into `raw_vitals.vitals` exactly once; returns what it did.

    Stops at the first of: every owned partition caught up (`until_caught_up`:
    each reached the end of its log at least once since the drain started;
    messages produced after that are left for the next drain), `duration`
    seconds, `stop` being set, or SIGTERM/SIGINT (when called from the main
    thread). Stopping always commits the batch in hand first.

    `scale_out=False` drains every partition alone (plain assignment, starts at
    once; a second single drain of the topic is refused). `scale_out=True` joins
    the drain's consumer group: run several such workers and the group shares the
    partitions among them (joins take seconds).
    """
    stop = stop if stop is not None else threading.Event()
    partitions = ensure_topic(settings)
    drain = _Drain(settings, scale_out=scale_out, batch_messages=batch_messages)
    with _stop_on_signals(stop):
        return drain.run(
            partitions,
            until_caught_up=until_caught_up,
            deadline=None if duration is None else time.monotonic() + duration,
            stop=stop,
        )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set `stop` once (a second one acts as before); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # getsignal() answers None for a handler not set from Python: restore the default then.
    previous = {
        sig: signal.getsignal(sig) or signal.SIG_DFL for sig in (signal.SIGTERM, signal.SIGINT)
    }

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()
        restore()

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        restore()


class _Drain:
    """The state of one drain run: consumer, positions, writer and counts."""

    def __init__(self, settings: Settings, *, scale_out: bool, batch_messages: int) -> None:
        self.settings = settings
        self.topic = settings.vitals_topic
        self.scale_out = scale_out
        self.batch_messages = batch_messages
        self.drain_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        self.summary = DrainSummary(
            source=SOURCE,
            topic=self.topic,
            mode="scale-out" if scale_out else "single",
            drain_id=self.drain_id,
        )
        self.positions: dict[int, int] = {}  # owned partition -> next offset to render
        self.caught_up: set[int] = set()
        self.assigned = False  # a group worker has its (possibly empty) assignment
        self.failed = False
        self.quarantined: Counter[str] = Counter()
        self.new_fields: Counter[str] = Counter()
        self._batches = 0

    def run(
        self,
        partitions: int,
        *,
        until_caught_up: bool,
        deadline: float | None,
        stop: threading.Event,
    ) -> DrainSummary:
        started = time.monotonic()
        with (
            connect(self.settings, "loader", autocommit=True) as control,
            connect(self.settings, "loader", autocommit=True) as data,
        ):
            ensure_tables(control)
            with _drain_lock(control, self.topic, shared=self.scale_out):
                self.control = control
                self.consumer = Consumer(self._config())
                # Half the stream's lookback: see SlowBatch.
                self.writer = _Writer(data, self.topic, self.settings.vitals_lookback_seconds / 2)
                try:
                    self._start(partitions)
                    self._loop(until_caught_up=until_caught_up, deadline=deadline, stop=stop)
                    self.writer.flush()
                    self._collect()
                    self.summary.positions = dict(sorted(self.positions.items()))
                except BaseException:
                    self.failed = True
                    raise
                finally:
                    # close() leaves the group; its revoke callback flushes the writer unless
                    # the drain failed (then whatever is in flight rolls back with the session).
                    self.consumer.close()
                    self.writer.close(wait=not self.failed)
        self.summary.quarantined = dict(sorted(self.quarantined.items()))
        self.summary.new_fields = dict(sorted(self.new_fields.items()))
        self.summary.seconds = time.monotonic() - started
        log.info("%s", self.summary.one_line())
        return self.summary

    def _config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.settings.kafka,
            "group.id": DRAIN_GROUP,
            "client.id": f"carehouse-vitals-drain-{self.drain_id}",
            # Offsets live in the database; Kafka's are written by hand, as advice.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            # A position outside the log means lost or recreated data: stop, do not skip.
            "auto.offset.reset": "error",
            "allow.auto.create.topics": False,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "queued.max.messages.kbytes": 32_768,
            # An idle partition answers within 0.1 s: end of log seen sooner, lower latency.
            "fetch.wait.max.ms": 100,
            "on_commit": self._kafka_committed,
        }

    def _start(self, partitions: int) -> None:
        if self.scale_out:
            self.consumer.subscribe(
                [self.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            return
        self.positions = read_positions(self.control, self.topic, range(partitions))
        self.consumer.assign(
            [TopicPartition(self.topic, p, offset) for p, offset in self.positions.items()]
        )
        self.assigned = True

    def _loop(
        self, *, until_caught_up: bool, deadline: float | None, stop: threading.Event
    ) -> None:
        renderer = Renderer(self.topic)
        while not stop.is_set():
            if until_caught_up and self.assigned and self.caught_up >= set(self.positions):
                self.summary.caught_up = True
                return
            timeout = POLL_SECONDS
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    return
            messages = self.consumer.consume(num_messages=self.batch_messages, timeout=timeout)
            self._collect()
            if not messages:
                self._check_not_ahead_of_broker()
                continue
            self._batches += 1
            batch = renderer.render(
                messages, self.positions, f"{self.drain_id}.{self._batches:06d}"
            )
            self.summary.skipped += batch.skipped
            self.summary.received += batch.skipped
            if batch.end_offsets:
                self.positions.update(batch.end_offsets)
                self.writer.submit(batch)
            self._handle_errors(batch)

    def _handle_errors(self, batch: RenderedBatch) -> None:
        for message in batch.errors:
            error = message.error()
            partition = message.partition()
            if error is None:
                continue
            if error.code() == KafkaError._PARTITION_EOF:
                if partition in self.positions:
                    self.caught_up.add(partition)
                continue
            if error.fatal() or error.code() in (
                KafkaError._AUTO_OFFSET_RESET,
                KafkaError.OFFSET_OUT_OF_RANGE,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
                KafkaError.TOPIC_AUTHORIZATION_FAILED,
            ):
                raise DrainError(
                    f"Kafka: {error.name()} on {self.topic} partition {partition}: {error.str()}"
                    " (a position outside the log means messages were lost or the topic was"
                    " recreated; the drain stops rather than skip them)"
                )
            log.warning("Kafka reported %s (%s); the client retries", error.name(), error.str())

    def _check_not_ahead_of_broker(self) -> None:
        """Fail when the database is past the end of a partition's log.

        Kafka answers such a fetch with an out-of-range error; Tansu answers with
        nothing, and a drain would wait there forever while the topic refills.
        """
        for partition, position in self.positions.items():
            if partition in self.caught_up:
                continue
            _, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), cached=True
            )
            if high >= 0 and position > high:
                raise DrainError(
                    f"{self.topic} partition {partition}: the warehouse has loaded up to offset"
                    f" {position} but the broker's log ends at {high}: the topic was recreated"
                    " or the broker lost messages (embedded Tansu keeps them in memory only)"
                )

    def _collect(self) -> None:
        """Account for the batches the writer finished; after a fence, resume from the database."""
        if self._account(self.writer.outcomes()):
            # What followed the fenced batch was dropped: wait for that, then re-seek.
            self.writer.flush()
            self._account(self.writer.outcomes())
            self.writer.resume()
            fresh = read_positions(self.control, self.topic, list(self.positions))
            log.warning("vitals drain fenced by another worker; resuming from the database offsets")
            for partition, offset in fresh.items():
                self.positions[partition] = offset
                self.caught_up.discard(partition)
                self.consumer.seek(TopicPartition(self.topic, partition, offset))

    def _account(self, outcomes: list[tuple[RenderedBatch, Outcome]]) -> bool:
        """Add finished batches to the summary; True when one of them was fenced."""
        fenced = False
        for batch, outcome in outcomes:
            if outcome == "fenced":
                fenced = True
                self.summary.fenced_batches += 1
                continue
            self.summary.batches += 1
            self.summary.received += batch.messages
            self.summary.loaded += batch.raw_count
            self.summary.rejected_by_database += batch.rejected
            self.summary.messages_with_new_fields += batch.messages_with_new_fields
            self.quarantined.update(batch.quarantined)
            self.new_fields.update(batch.new_fields)
            self._commit_to_kafka(batch.end_offsets)
        return fenced

    def _commit_to_kafka(self, offsets: dict[int, int]) -> None:
        # Advisory, for lag monitoring: the drain never reads them back.
        try:
            self.consumer.commit(
                offsets=[TopicPartition(self.topic, p, offset) for p, offset in offsets.items()],
                asynchronous=True,
            )
        except KafkaException as err:
            log.warning("advisory Kafka offset commit failed: %s", err.args[0].name())

    def _kafka_committed(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            log.warning("advisory Kafka offset commit failed: %s", err.name())

    # Rebalance callbacks run inside consume(), on the main thread.

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        owned = [tp.partition for tp in partitions]
        positions = read_positions(self.control, self.topic, owned)
        for tp in partitions:
            tp.offset = positions[tp.partition]
        consumer.assign(partitions)
        self.positions.update(positions)
        self.caught_up.difference_update(owned)
        self.assigned = True
        log.info("vitals drain %s assigned partitions %s", self.drain_id, sorted(owned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = False  # not caught up while the group rebalances
        if self.failed:
            return
        # Commit what was rendered while the partitions were ours; a batch that lost the
        # race to their new owner is fenced and rolled back.
        self.writer.flush()
        for tp in partitions:
            self.positions.pop(tp.partition, None)
            self.caught_up.discard(tp.partition)
        self._collect()
        consumer.unassign()
        log.info(
            "vitals drain %s released partitions %s",
            self.drain_id,
            sorted(tp.partition for tp in partitions),
        )


# ---- entry point for a drain in its own process -----------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m carehouse.ingest.vitals`: one drain; prints its summary."""
    parser = argparse.ArgumentParser(prog="python -m carehouse.ingest.vitals", description=__doc__)
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--continuous", action="store_true", help="do not stop when caught up (default: stop)"
    )
    parser.add_argument("--scale-out", action="store_true", help="join the drain's consumer group")
    parser.add_argument("--batch-messages", type=int, default=BATCH_MESSAGES)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    summary = drain_vitals(
        Settings(),
        until_caught_up=not args.continuous,
        duration=args.duration,
        scale_out=args.scale_out,
        batch_messages=args.batch_messages,
    )
    print(json.dumps(summary.to_json()) if args.json else summary.one_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
