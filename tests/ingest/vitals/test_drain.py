"""Vitals from Kafka into raw_vitals.vitals: each message once, poison dead-lettered, never stuck.

Runs against the session's Tansu broker and Postgres; every test has its own
topic (coordinates are keyed by topic), in one throwaway warehouse database.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from carehouse.core.settings import Settings
from carehouse.demo.monitors import generate_vitals
from carehouse.ingest.vitals.batches import write_batch
from carehouse.ingest.vitals.drain import drain_vitals
from carehouse.ingest.vitals.errors import DrainError, Fenced, SlowBatch
from carehouse.ingest.vitals.messages import RenderedBatch, Renderer, check
from carehouse.ingest.vitals.settings import DRAIN_GROUP, PARTITIONS
from carehouse.ingest.vitals.tables import ensure_tables, read_positions
from carehouse.ingest.vitals.topic import ensure_topic
from tests.support.warehouse import isolated_warehouse

VALID = {
    "device_id": "MON-00001",
    "patient_id": "P0000001",
    "observed_at": "2025-03-12T10:11:12+00:00",
    "heart_rate": 72,
    "resp_rate": 16,
    "systolic_bp": 128,
    "diastolic_bp": 80,
    "spo2": 97,
    "spo2_scale": 1,
    "on_oxygen": False,
    "consciousness": "A",
    "temperature_c": 36.8,
}


DROP = object()  # a field to leave out


def vital(**changes: object) -> bytes:
    doc = {**VALID, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not DROP}).encode()


# (key, value, what the drain must do: "loaded" or the dead-letter reason), in offset order.
CORPUS: list[tuple[bytes | None, bytes | None, str]] = [
    (b"MON-00001", vital(), "loaded"),
    (b"MON-00001", vital(), "loaded"),  # a producer retry: bronze keeps both
    (b"MON-00001", vital(heart_rate=900), "loaded"),  # implausible is dbt's business
    (b"MON-00001", vital(heart_rate="fast"), "wrong_type:heart_rate"),
    (b"MON-00001", vital(heart_rate=True), "wrong_type:heart_rate"),
    (b"MON-00001", vital(heart_rate=None), "wrong_type:heart_rate"),
    (b"MON-00001", vital(on_oxygen="yes"), "wrong_type:on_oxygen"),
    (b"MON-00001", vital(spo2="97%"), "wrong_type:spo2"),
    (b"MON-00001", vital(spo2_scale=3), "invalid_value:spo2_scale"),
    (b"MON-00001", vital(consciousness="X"), "invalid_value:consciousness"),
    (b"MON-00001", vital(resp_rate=DROP), "missing_field:resp_rate"),
    (b"MON-00001", b"HR=72;RR=16", "not_json"),
    (b"MON-00001", vital()[:40], "not_json"),
    (b"MON-00001", b'{"heart_rate": 1e400}', "not_json"),
    (b"MON-00001", vital(device_id="MON\x0000001"), "not_json"),  # jsonb cannot hold \u0000
    (b"MON-00001", None, "null_value"),
    (b"MON-00001", vital().decode().encode("utf-16"), "not_utf8"),
    (b"MON-00001", b"[1, 2, 3]", "not_an_object"),
    (b"MON-00001", b'"MON-00001"', "not_an_object"),
    (b"MON-00001", vital(observed_at="2025-03-12T10:11:12"), "bad_timestamp"),
    (b"MON-00001", vital(observed_at="yesterday"), "bad_timestamp"),
    (b"MON-00001", vital(firmware="4.2.1", pain_score=2), "loaded"),  # new fields: kept
    # Escapes, tabs and newlines: loaded exactly as sent.
    (b"MON\t01", vital(device_id='MON\t"01"\\x', patient_id="P\u00e9\n1"), "loaded"),
    (b"MON-00001", json.dumps(VALID, indent=2).encode(), "loaded"),  # pretty-printed
    (b"MON-00001", vital(spo2_scale=2.0, heart_rate=72.5), "loaded"),
    (None, vital(observed_at="2025-03-12T15:41:12.5+05:30"), "loaded"),  # no key
    (b"MON-00001", vital(observed_at="2025-03-12T10:11:12Z"), "loaded"),
    (b"MON-00001", vital(), "loaded"),  # after all that poison: no stall
]


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    with isolated_warehouse(settings, "vitals") as isolated:
        yield isolated


def with_topic(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={"vitals_topic": f"vitals-{name}-{uuid4().hex[:8]}"})


def produce(
    settings: Settings, messages: list[tuple[bytes | None, bytes | None]], partition: int = 0
) -> None:
    """Send messages to one partition, in order, and wait until the broker has them all."""
    ensure_topic(settings)
    producer = Producer({"bootstrap.servers": settings.kafka, "enable.idempotence": True})
    failed: list[str] = []

    def delivered(err: KafkaError | None, message: Message) -> None:
        if err is not None:
            failed.append(err.name())

    for key, value in messages:
        producer.produce(
            settings.vitals_topic, value, key=key, partition=partition, on_delivery=delivered
        )
    assert producer.flush(30) == 0
    assert not failed


def rows(settings: Settings, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.dsn("admin")) as conn:
        return conn.execute(query, {"topic": settings.vitals_topic}).fetchall()


def reconcile(settings: Settings) -> tuple[int, int]:
    """(raw rows, dead letters) of the topic; checks coordinates are each there once."""
    [(raw, raw_distinct)] = rows(
        settings,
        "select count(*), count(distinct (kafka_partition, kafka_offset)) from raw_vitals.vitals"
        " where kafka_topic = %(topic)s",
    )
    [(dead, dead_distinct)] = rows(
        settings,
        "select count(*), count(distinct (kafka_partition, kafka_offset))"
        " from quarantine.vitals_dead_letters where kafka_topic = %(topic)s",
    )
    [(both,)] = rows(
        settings,
        "select count(*) from raw_vitals.vitals r join quarantine.vitals_dead_letters d"
        " using (kafka_topic, kafka_partition, kafka_offset) where r.kafka_topic = %(topic)s",
    )
    assert (raw, dead, both) == (raw_distinct, dead_distinct, 0)
    return raw, dead


def drain_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process's Settings() equal `settings`."""
    return {
        **os.environ,
        "CAREHOUSE_DATABASE_URL": settings.dsn("admin"),
        "CAREHOUSE_LOADER_PASSWORD": settings.role_password("loader"),
        "CAREHOUSE_TRANSFORMER_PASSWORD": settings.role_password("transformer"),
        "CAREHOUSE_BI_PASSWORD": settings.role_password("bi"),
        "CAREHOUSE_VITALS_TOPIC": settings.vitals_topic,
    }


def start_drain(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "carehouse.ingest.vitals", "--json", *args],
        env=drain_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ---- poison, types, new fields ----------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(warehouse: Settings) -> tuple[Settings, dict[str, object]]:
    settings = with_topic(warehouse, "corpus")
    produce(settings, [(key, value) for key, value, _ in CORPUS])
    return settings, drain_vitals(settings).to_json()


def test_check_names_the_first_problem() -> None:
    for _, value, expected in CORPUS:
        reason, _ = check(value)
        assert (reason or "loaded") == expected, value


def test_every_message_loaded_or_dead_lettered_once(corpus: tuple[Settings, dict[str, object]]):
    settings, summary = corpus
    expected = Counter(outcome for _, _, outcome in CORPUS)
    assert reconcile(settings) == (expected.pop("loaded"), sum(expected.values()))
    assert summary["received"] == len(CORPUS)
    assert summary["loaded"] == sum(outcome == "loaded" for _, _, outcome in CORPUS)
    assert summary["quarantined_by_reason"] == dict(sorted(expected.items()))
    assert summary["skipped"] == 0
    assert summary["caught_up"] is True
    positions = rows(
        settings,
        "select partition, next_offset from raw_vitals._carehouse_offsets"
        " where topic = %(topic)s order by partition",
    )
    assert positions == [(p, len(CORPUS) if p == 0 else 0) for p in range(PARTITIONS)]


def test_dead_letters_keep_raw_bytes_and_reason(corpus: tuple[Settings, dict[str, object]]):
    settings, _ = corpus
    dead = rows(
        settings,
        "select kafka_offset, message_key, message_value, reason, kafka_timestamp is not null"
        " from quarantine.vitals_dead_letters where kafka_topic = %(topic)s order by 1",
    )
    expected = [
        (offset, key, value, outcome, True)
        for offset, (key, value, outcome) in enumerate(CORPUS)
        if outcome != "loaded"
    ]
    assert dead == expected


def test_raw_keeps_each_message_as_received(corpus: tuple[Settings, dict[str, object]]):
    settings, _ = corpus
    raw = rows(
        settings,
        "select kafka_offset, message_key, payload, device_id, patient_id, observed_at,"
        " heart_rate, spo2_scale, on_oxygen, consciousness, temperature_c, _drain_batch_id"
        " from raw_vitals.vitals where kafka_topic = %(topic)s order by kafka_offset",
    )
    loaded = [(o, k, v) for o, (k, v, outcome) in enumerate(CORPUS) if outcome == "loaded"]
    assert [row[0] for row in raw] == [offset for offset, _, _ in loaded]
    for row, (_, key, value) in zip(raw, loaded, strict=True):
        assert value is not None
        doc = json.loads(value)
        assert row[1] == key
        assert row[2] == doc  # the whole message
        assert row[3:5] == (doc["device_id"], doc["patient_id"])
        assert row[5] == datetime.fromisoformat(doc["observed_at"])
        assert row[6] == Decimal(str(doc["heart_rate"]))
        assert row[7:10] == (int(doc["spo2_scale"]), doc["on_oxygen"], doc["consciousness"])
        assert row[10] == Decimal(str(doc["temperature_c"]))
        assert row[11]


def test_new_fields_reported_not_dead_lettered(corpus: tuple[Settings, dict[str, object]]):
    _, summary = corpus
    assert summary["messages_with_new_fields"] == 1
    assert summary["new_fields"] == {"firmware": 1, "pain_score": 1}


def test_draining_again_after_catching_up_loads_nothing(
    corpus: tuple[Settings, dict[str, object]],
) -> None:
    settings, _ = corpus
    before = reconcile(settings)
    again = drain_vitals(settings)
    assert (again.received, again.loaded, again.quarantined_total, again.skipped) == (0, 0, 0, 0)
    assert again.caught_up
    assert reconcile(settings) == before


# ---- exactly once under kill -9 ---------------------------------------------------------


def test_kill_9_at_random_moments_neither_loses_nor_duplicates(warehouse: Settings) -> None:
    settings = with_topic(warehouse, "kill")
    ensure_topic(settings)
    messages = list(generate_vitals(seed=11, end_date=date(2025, 3, 31), days=60, scale=1.0))
    delivered: set[tuple[int, int]] = set()
    failures: list[str] = []

    def report(err: KafkaError | None, message: Message) -> None:
        if err is None:
            delivered.add((message.partition() or 0, message.offset() or 0))
        else:
            failures.append(err.name())

    def feed() -> None:
        producer = Producer(
            {"bootstrap.servers": settings.kafka, "enable.idempotence": True, "linger.ms": 5}
        )
        for start in range(0, len(messages), 1_500):
            for message in messages[start : start + 1_500]:
                producer.produce(
                    settings.vitals_topic, message.value, key=message.key, on_delivery=report
                )
            producer.poll(0)
            time.sleep(0.1)  # about 15,000 messages/s for 11 s: the kills hit a live stream
        producer.flush(30)

    log = settings.state_dir / "postgres.log"
    cut_before = _cut_transactions(log)
    feeder = threading.Thread(target=feed)
    feeder.start()
    rng = random.Random(5)
    try:
        for kill in range(12):
            drain = start_drain(settings, "--continuous", "--batch-messages", "2000")
            if kill % 2:
                _wait_for_open_batch(settings, drain)  # mid-transaction
            else:
                time.sleep(rng.uniform(0.2, 1.5))  # any instant: starting, seeking, consuming
            drain.send_signal(signal.SIGKILL)
            drain.communicate()
    finally:
        feeder.join()
    if log.exists():  # the embedded server logs each client lost inside a transaction
        assert _cut_transactions(log) - cut_before >= 3
    assert not failures
    assert len(delivered) == len(messages)
    loaded_before_final_drain = sum(reconcile(settings))
    assert loaded_before_final_drain > 0  # the killed drains did commit batches

    summary = drain_vitals(settings)
    raw, dead = reconcile(settings)
    assert raw + dead == len(messages)
    coordinates = rows(
        settings,
        "select kafka_partition, kafka_offset from raw_vitals.vitals where kafka_topic = %(topic)s"
        " union all select kafka_partition, kafka_offset from quarantine.vitals_dead_letters"
        " where kafka_topic = %(topic)s",
    )
    assert set(coordinates) == delivered
    assert summary.received == len(messages) - loaded_before_final_drain
    poison = Counter(
        m.kind.removeprefix("poison:") for m in messages if m.kind.startswith("poison:")
    )
    dead_reasons = rows(
        settings,
        "select reason, count(*) from quarantine.vitals_dead_letters"
        " where kafka_topic = %(topic)s group by 1",
    )
    assert dict(dead_reasons) == dict(poison)


def _cut_transactions(log: Path) -> int:
    if not log.exists():
        return 0
    return log.read_text(errors="replace").count("client connection with an open transaction")


def _wait_for_open_batch(settings: Settings, drain: subprocess.Popen[str]) -> None:
    """Return once the drain has a batch transaction open (or after 10 s)."""
    deadline = time.monotonic() + 10
    with psycopg.connect(settings.dsn("admin"), autocommit=True) as conn:
        while drain.poll() is None and time.monotonic() < deadline:
            [(open_,)] = conn.execute(
                "select count(*) from pg_stat_activity where datname = current_database()"
                " and usename = 'carehouse_loader' and xact_start is not null",
            ).fetchall()
            if open_:
                return
            time.sleep(0.002)


def test_sigterm_stops_a_continuous_drain_after_committing(warehouse: Settings) -> None:
    settings = with_topic(warehouse, "sigterm")
    produce(settings, [(b"MON-00001", vital()) for _ in range(50)])
    drain = start_drain(settings, "--continuous")
    deadline = time.monotonic() + 30
    while sum(reconcile(settings)) < 50 and time.monotonic() < deadline:
        time.sleep(0.1)
    drain.send_signal(signal.SIGTERM)
    out, err = drain.communicate(timeout=30)
    assert drain.returncode == 0, err
    summary = json.loads(out)
    assert summary["loaded"] == 50
    assert summary["caught_up"] is False
    assert reconcile(settings) == (50, 0)


# ---- scale-out: two workers in one consumer group ---------------------------------------


def test_two_workers_in_one_group_load_each_message_once(warehouse: Settings) -> None:
    settings = with_topic(warehouse, "group")
    ensure_topic(settings)
    messages = list(generate_vitals(seed=12, end_date=date(2025, 3, 31), days=20, scale=0.5))
    workers = [
        start_drain(settings, "--scale-out", "--continuous", "--duration", "14") for _ in "ab"
    ]
    producer = Producer({"bootstrap.servers": settings.kafka, "enable.idempotence": True})
    # Spread over 9 s: the group forms (seconds on Tansu) and rebalances while messages flow.
    chunk = len(messages) // 45 + 1
    for start in range(0, len(messages), chunk):
        for message in messages[start : start + chunk]:
            producer.produce(settings.vitals_topic, message.value, key=message.key)
        producer.poll(0)
        time.sleep(0.2)
    assert producer.flush(30) == 0
    summaries = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        summaries.append(json.loads(out))
    assert all(summary["mode"] == "scale-out" for summary in summaries)
    assert all(summary["received"] > 0 for summary in summaries)  # both had partitions

    rest = drain_vitals(settings)  # whatever arrived after the workers stopped
    raw, dead = reconcile(settings)
    assert raw + dead == len(messages)
    assert sum(s["received"] for s in summaries) + rest.received == len(messages)


# ---- fencing and the database's last word -----------------------------------------------


def _batches(settings: Settings, count: int) -> tuple[RenderedBatch, RenderedBatch]:
    """Two batches rendered from the same messages and positions: a worker and its zombie."""
    produce(settings, [(b"MON-00001", vital()) for _ in range(count)])
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka, "group.id": "test", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(settings.vitals_topic, 0, 0)])
    messages: list[Message] = []
    while len(messages) < count:
        messages += [m for m in consumer.consume(count - len(messages), 5) if m.error() is None]
    consumer.close()
    with psycopg.connect(settings.dsn("loader"), autocommit=True) as conn:
        ensure_tables(conn)
        positions = read_positions(conn, settings.vitals_topic, range(PARTITIONS))
    renderer = Renderer(settings.vitals_topic)
    return (
        renderer.render(messages, positions, "worker.000001"),
        renderer.render(messages[: count // 2], positions, "zombie.000001"),
    )


def _lock_offset_row(conn: psycopg.Connection, settings: Settings) -> None:
    """Hold partition 0's offset row in `conn`'s transaction, as a batch being written does."""
    conn.execute(
        "select 1 from raw_vitals._carehouse_offsets"
        " where consumer_group = %s and topic = %s and partition = 0 for update",
        (DRAIN_GROUP, settings.vitals_topic),
    )


def _write_in_background(
    settings: Settings,
    batch: RenderedBatch,
    expected: type[Exception],
    max_open_seconds: float | None = None,
) -> tuple[threading.Thread, list[BaseException | None]]:
    """write_batch in a thread of its own, to wait on a lock this test holds.

    Its outcome, once the thread ended: [None] when the batch committed, [the error] when it
    raised `expected` (any other error ends the thread with no outcome).
    """
    outcome: list[BaseException | None] = []

    def write() -> None:
        with psycopg.connect(settings.dsn("loader"), autocommit=True) as conn:
            try:
                write_batch(conn, batch, settings.vitals_topic, max_open_seconds=max_open_seconds)
                outcome.append(None)
            except expected as err:
                outcome.append(err)

    thread = threading.Thread(target=write)
    thread.start()
    return thread, outcome


def test_a_zombie_batch_is_rolled_back_whole(warehouse: Settings) -> None:
    settings = with_topic(warehouse, "zombie")
    worker, zombie = _batches(settings, 6)
    with psycopg.connect(settings.dsn("loader"), autocommit=True) as conn:
        write_batch(conn, worker, settings.vitals_topic)
        with pytest.raises(Fenced):
            write_batch(conn, zombie, settings.vitals_topic)
    assert reconcile(settings) == (6, 0)
    assert rows(
        settings,
        "select distinct _drain_batch_id from raw_vitals.vitals where kafka_topic = %(topic)s",
    ) == [("worker.000001",)]


def test_a_zombie_waiting_on_the_partition_is_fenced_when_the_owner_commits(
    warehouse: Settings,
) -> None:
    settings = with_topic(warehouse, "race")
    _worker, zombie = _batches(settings, 6)
    with psycopg.connect(settings.dsn("loader")) as owner:
        # The owner is mid-batch: its transaction holds the partition's offset row.
        _lock_offset_row(owner, settings)
        thread, outcome = _write_in_background(settings, zombie, Fenced)
        time.sleep(0.5)
        assert thread.is_alive()  # blocked behind the owner
        owner.execute(
            "update raw_vitals._carehouse_offsets set next_offset = 6"
            " where consumer_group = %s and topic = %s and partition = 0",
            (DRAIN_GROUP, settings.vitals_topic),
        )
        owner.commit()
        thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], Fenced)
    assert reconcile(settings) == (0, 0)


def test_a_batch_open_longer_than_half_the_stream_lookback_is_rolled_back(
    warehouse: Settings,
) -> None:
    # Its rows would be stamped (transaction start) further back than a stream refresh looks.
    settings = with_topic(warehouse, "slow")
    batch, _ = _batches(settings, 6)
    with psycopg.connect(settings.dsn("loader")) as other:
        # Another session holds the partition's offset row: the batch's transaction waits.
        _lock_offset_row(other, settings)
        thread, outcome = _write_in_background(settings, batch, SlowBatch, max_open_seconds=1.0)
        time.sleep(1.5)
        other.rollback()  # the row is free again, its offset unchanged
        thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], SlowBatch)
    assert reconcile(settings) == (0, 0)
    with psycopg.connect(settings.dsn("loader"), autocommit=True) as conn:
        assert read_positions(conn, settings.vitals_topic, [0])[0] == 0
        # Written again in time, the same batch commits whole.
        write_batch(conn, batch, settings.vitals_topic, max_open_seconds=30.0)
    assert reconcile(settings) == (6, 0)


def test_rows_postgres_refuses_are_dead_lettered_not_stuck(warehouse: Settings) -> None:
    settings = with_topic(warehouse, "refused")
    batch, _ = _batches(settings, 4)
    rows_ = batch.raw_data.splitlines(keepends=True)
    fields = rows_[2].split(b"\t")
    fields[12] = b"not-a-number"  # spo2, as if a check had let it through
    rows_[2] = b"\t".join(fields)
    batch.raw_data = b"".join(rows_)
    with psycopg.connect(settings.dsn("loader"), autocommit=True) as conn:
        assert write_batch(conn, batch, settings.vitals_topic) == 1
    assert reconcile(settings) == (3, 1)
    assert batch.quarantined == {"rejected_by_database:22P02": 1}
    [(offset, value)] = rows(
        settings,
        "select kafka_offset, message_value from quarantine.vitals_dead_letters"
        " where kafka_topic = %(topic)s",
    )
    assert (offset, json.loads(bytes(value))) == (2, VALID)


def test_a_database_ahead_of_the_broker_stops_the_drain(warehouse: Settings) -> None:
    settings = with_topic(warehouse, "ahead")
    produce(settings, [(b"MON-00001", vital()) for _ in range(3)])
    with psycopg.connect(settings.dsn("loader"), autocommit=True) as conn:
        ensure_tables(conn)
        read_positions(conn, settings.vitals_topic, range(PARTITIONS))
        conn.execute(
            "update raw_vitals._carehouse_offsets set next_offset = 10 where topic = %s"
            " and partition = 0",
            (settings.vitals_topic,),
        )
    with pytest.raises(DrainError, match="partition 0"):
        drain_vitals(settings)
    assert reconcile(settings) == (0, 0)


def test_ensure_topic_creates_six_partitions_once(warehouse: Settings) -> None:
    settings = with_topic(warehouse, "topic")
    assert ensure_topic(settings) == PARTITIONS
    assert ensure_topic(settings, partitions=3) == PARTITIONS
