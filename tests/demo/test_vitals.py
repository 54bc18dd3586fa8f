"""The bedside-monitor simulator: deterministic, clinically plausible, as dirty as promised."""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from uuid import uuid4

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from carehouse.core.settings import Settings
from carehouse.demo.monitors import MESSAGES_PER_YEAR, VitalMessage, generate_vitals
from carehouse.demo.vitals import produce_vitals, stream_vitals
from carehouse.ingest.vitals.drain import drain_vitals
from carehouse.ingest.vitals.messages import check
from carehouse.ingest.vitals.settings import FIELD_NAMES, PARTITIONS, PRODUCED_AT_HEADER
from tests.support.warehouse import isolated_warehouse

END = date(2025, 3, 31)


def generate(seed: int = 7, days: int = 30, scale: float = 1.0) -> list[VitalMessage]:
    return list(generate_vitals(seed=seed, end_date=END, days=days, scale=scale))


@pytest.fixture(scope="module")
def month() -> list[VitalMessage]:
    return generate()


def news2(doc: dict[str, object]) -> tuple[int, bool]:
    """NEWS2 total and whether one parameter scores 3 (the domain brief's tables)."""
    scores = []
    rr, spo2, sbp, hr, temp = (
        float(str(doc[name]))
        for name in ("resp_rate", "spo2", "systolic_bp", "heart_rate", "temperature_c")
    )
    scores.append(3 if rr <= 8 else 1 if rr <= 11 else 0 if rr <= 20 else 2 if rr <= 24 else 3)
    if doc["spo2_scale"] == 1:
        scores.append(3 if spo2 <= 91 else 2 if spo2 <= 93 else 1 if spo2 <= 95 else 0)
    elif spo2 <= 87:
        scores.append(3 if spo2 <= 83 else 2 if spo2 <= 85 else 1)
    elif spo2 <= 92 or not doc["on_oxygen"]:
        scores.append(0)
    else:
        scores.append(1 if spo2 <= 94 else 2 if spo2 <= 96 else 3)
    scores.append(
        3 if sbp <= 90 else 2 if sbp <= 100 else 1 if sbp <= 110 else 0 if sbp <= 219 else 3
    )
    scores.append(
        3
        if hr <= 40
        else 1
        if hr <= 50
        else 0
        if hr <= 90
        else 1
        if hr <= 110
        else 2
        if hr <= 130
        else 3
    )
    scores.append(0 if doc["consciousness"] == "A" else 3)
    scores.append(
        3 if temp <= 35 else 1 if temp <= 36 else 0 if temp <= 38 else 1 if temp <= 39 else 2
    )
    return sum(scores) + (2 if doc["on_oxygen"] else 0), 3 in scores


def test_same_seed_same_messages_other_seed_other_messages(month: list[VitalMessage]) -> None:
    assert generate() == month
    assert generate(seed=8)[:100] != month[:100]


def test_scale_sets_the_volume() -> None:
    expected = MESSAGES_PER_YEAR * 0.5 * 30 / 365
    assert abs(len(generate(days=30, scale=0.5)) / expected - 1) < 0.1
    assert abs(len(generate(days=5, scale=0.5)) / (expected / 6) - 1) < 0.2


def test_every_message_is_what_the_drain_will_make_of_it(month: list[VitalMessage]) -> None:
    for message in month:
        reason, _ = check(message.value)
        expected = (
            message.kind.removeprefix("poison:") if message.kind.startswith("poison") else None
        )
        assert reason == expected, message


def test_about_five_percent_dirt_of_every_kind(month: list[VitalMessage]) -> None:
    kinds = Counter(message.kind for message in month)
    retries = sum(message.retry for message in month)
    dirty = retries + sum(count for kind, count in kinds.items() if kind != "valid")
    assert 0.04 < dirty / len(month) < 0.065
    assert retries / len(month) > 0.01
    for kind in ("late", "out_of_order", "implausible"):
        assert kinds[kind] > 0, kind
    poison = {kind.removeprefix("poison:") for kind in kinds if kind.startswith("poison:")}
    assert {
        "not_json",
        "null_value",
        "not_utf8",
        "not_an_object",
        "bad_timestamp",
        "wrong_type:heart_rate",
        "invalid_value:spo2_scale",
        "missing_field:temperature_c",
    } <= poison
    # A retry is the same message again, right behind the first.
    for index, message in enumerate(month):
        if message.retry:
            assert any(other.value == message.value for other in month[max(0, index - 50) : index])


def test_messages_are_keyed_by_device_and_arrive_late_or_out_of_order(
    month: list[VitalMessage],
) -> None:
    last_seen: dict[str, str] = {}
    behind = 0
    for message in month:
        _reason, doc = check(message.value)
        if doc is None:
            continue
        assert message.key.decode() == doc["device_id"]
        assert list(doc)[: len(FIELD_NAMES)] == list(FIELD_NAMES)
        observed = str(doc["observed_at"])
        device = str(doc["device_id"])
        if device in last_seen and _instant(observed) < _instant(last_seen[device]):
            behind += 1
        last_seen[device] = max(last_seen.get(device, observed), observed, key=_instant)
    assert behind > 0.005 * len(month)
    assert all(a.sent_at <= b.sent_at for a, b in itertools.pairwise(month))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_deterioration_drives_news2_up(month: list[VitalMessage]) -> None:
    docs = [doc for m in month if m.kind == "valid" and (doc := check(m.value)[1]) is not None]
    scores = [news2(doc) for doc in docs]
    high = sum(total >= 7 for total, _ in scores) / len(scores)
    low = sum(total <= 4 and not three for total, three in scores) / len(scores)
    assert 0.01 < high < 0.15
    assert low > 0.8
    levels = Counter(doc["consciousness"] for doc in docs)
    assert {"A", "C", "V", "P", "U"} <= set(levels)
    assert any(doc["spo2_scale"] == 2 for doc in docs)
    assert 0.02 < sum(bool(doc["on_oxygen"]) for doc in docs) / len(docs) < 0.2
    # An episode is a course, not noise: some stays score high several observations running.
    runs: dict[str, int] = defaultdict(int)
    longest = 0
    for doc, (total, _) in zip(docs, scores, strict=True):
        key = str(doc["device_id"])
        runs[key] = runs[key] + 1 if total >= 7 else 0
        longest = max(longest, runs[key])
    assert longest >= 4


def test_patients_come_from_the_given_list_one_monitor_at_a_time() -> None:
    patients = [f"P{number:07d}" for number in range(1, 41)]
    messages = list(generate_vitals(seed=3, end_date=END, days=10, scale=0.3, patients=patients))
    seen: list[tuple[datetime, str, str]] = []
    for message in messages:
        _, doc = check(message.value)
        if doc is not None:
            assert doc["patient_id"] in patients
            seen.append(
                (_instant(str(doc["observed_at"])), str(doc["patient_id"]), str(doc["device_id"]))
            )
    by_patient: dict[str, list[str]] = defaultdict(list)
    by_device: dict[str, list[str]] = defaultdict(list)
    for _, patient, device in sorted(seen):
        by_patient[patient].append(device)
        by_device[device].append(patient)
    assert len(by_patient) > 10
    # Two monitors on one patient at once would alternate at every observation.
    for sequence in (*by_patient.values(), *by_device.values()):
        switches = sum(a != b for a, b in itertools.pairwise(sequence))
        assert switches <= 2 * len(set(sequence))
    default = generate(days=3, scale=0.2)
    ids = {str(doc["patient_id"]) for m in default if (doc := check(m.value)[1]) is not None}
    assert all(len(i) == 8 and i.startswith("P") and i[1:].isdigit() for i in ids)


# ---- against the broker -----------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[Settings]:
    with isolated_warehouse(settings, "vitals_demo") as isolated:
        yield isolated


def test_produced_messages_reconcile_with_the_drain(warehouse: Settings) -> None:
    settings = warehouse.model_copy(update={"vitals_topic": f"vitals-demo-{uuid4().hex[:8]}"})
    produced = produce_vitals(settings, seed=5, end_date=END, days=7, scale=0.5)
    expected = list(generate_vitals(seed=5, end_date=END, days=7, scale=0.5))
    assert produced == len(expected)
    summary = drain_vitals(settings)
    assert summary.received == produced
    poison = Counter(
        m.kind.removeprefix("poison:") for m in expected if m.kind.startswith("poison")
    )
    assert summary.quarantined == dict(sorted(poison.items()))
    assert summary.loaded == produced - sum(poison.values())
    assert summary.new_fields  # the newer firmware's fields are reported
    with psycopg.connect(settings.dsn("admin")) as conn:
        [(raw, dead)] = conn.execute(
            "select (select count(*) from raw_vitals.vitals where kafka_topic = %(t)s),"
            " (select count(*) from quarantine.vitals_dead_letters where kafka_topic = %(t)s)",
            {"t": settings.vitals_topic},
        ).fetchall()
    assert (raw, dead) == (summary.loaded, summary.quarantined_total)


def test_stream_paces_messages_and_stamps_them(settings: Settings) -> None:
    topic = settings.model_copy(update={"vitals_topic": f"vitals-stream-{uuid4().hex[:8]}"})
    started = time.time()
    sent = stream_vitals(topic, rate=400, duration=1.5, seed=1)
    finished = time.time()
    assert 500 <= sent <= 640  # 600 planned, plus retries, minus messages too late to send
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka, "group.id": "test", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic.vitals_topic, p, 0) for p in range(PARTITIONS)])
    received, ends = [], 0
    while ends < PARTITIONS:
        for message in consumer.consume(1000, 2):
            if message.error() is None:
                received.append(message)
            else:
                ends += 1
    consumer.close()
    assert len(received) == sent
    for message in received:
        headers = dict(message.headers() or [])
        stamp = int(headers[PRODUCED_AT_HEADER] or b"0") / 1000
        assert started - 1 <= stamp <= finished + 1
        _, doc = check(message.value())
        if doc is not None:
            observed = _instant(str(doc["observed_at"])).astimezone(UTC).timestamp()
            assert started - 1 <= observed <= finished + 1
            assert set(FIELD_NAMES) <= set(doc)
