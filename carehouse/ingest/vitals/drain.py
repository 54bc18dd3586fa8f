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
`carehouse.ingest.vitals.messages`) while a writer thread runs the previous batch's
transaction, so Python and Postgres work at the same time.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from carehouse.core.database import connect
from carehouse.core.settings import Settings
from carehouse.ingest.vitals.errors import DrainError
from carehouse.ingest.vitals.messages import RenderedBatch, Renderer
from carehouse.ingest.vitals.settings import (
    BATCH_MESSAGES,
    DRAIN_GROUP,
    POLL_SECONDS,
    SOURCE,
)
from carehouse.ingest.vitals.signals import stop_on_signals
from carehouse.ingest.vitals.summary import DrainSummary
from carehouse.ingest.vitals.tables import drain_lock, ensure_tables, read_positions
from carehouse.ingest.vitals.topic import ensure_topic
from carehouse.ingest.vitals.writer import BatchWriter, Outcome

log = logging.getLogger(__name__)


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
    with stop_on_signals(stop):
        return drain.run(
            partitions,
            until_caught_up=until_caught_up,
            deadline=None if duration is None else time.monotonic() + duration,
            stop=stop,
        )


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
            with drain_lock(control, self.topic, shared=self.scale_out):
                self.control = control
                self.consumer = Consumer(self._config())
                # Half the stream's lookback: see SlowBatch.
                self.writer = BatchWriter(
                    data, self.topic, self.settings.vitals_lookback_seconds / 2
                )
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
